"""``ticker serve --demo``: sample headlines every few seconds, so a new page is alive."""

from __future__ import annotations

import itertools
import logging
import threading
from datetime import timedelta

from ticker.desk import Desk
from ticker.errors import TickerError
from ticker.metrics import Metrics
from ticker.models import ItemIn
from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.demo")

# (channel, source, headline, urgency, regions, categories)
SAMPLES = [
    ("en", "Dutch Police", "Rotterdam shooter arrested", 2, ["europe"], ["crime"]),
    ("ar", "الشرطة الهولندية", "القبض على مطلق النار في روتردام", 2, ["europe"], ["crime"]),
    (
        "es",
        "Policía neerlandesa",
        "Detenido el autor del tiroteo de Róterdam",
        2,
        ["europe"],
        ["crime"],
    ),
    ("en", "Reuters", "Central bank holds rates at 4.25%", 4, ["us-canada"], ["economy"]),
    ("ar", "وكالة الأنباء", "البنك المركزي يبقي أسعار الفائدة دون تغيير", 4, ["mena"], ["economy"]),
    ("es", "EFE", "El banco central mantiene los tipos de interés", 4, ["latam"], ["economy"]),
    (
        "en",
        "AP",
        "Magnitude 6.1 earthquake strikes off the coast of Chile",
        1,
        ["latam"],
        ["disaster"],
    ),
    ("ar", "وكالة الأنباء", "زلزال بقوة 6.1 درجات قبالة سواحل تشيلي", 1, ["latam"], ["disaster"]),
    (
        "es",
        "EFE",
        "Un terremoto de magnitud 6,1 sacude la costa de Chile",
        1,
        ["latam"],
        ["disaster"],
    ),
    ("en", "UEFA", "Final moved to Lisbon after stadium inspection", 5, ["europe"], ["sports"]),
    (
        "ar",
        "الاتحاد الأوروبي لكرة القدم",
        "نقل المباراة النهائية إلى لشبونة",
        5,
        ["europe"],
        ["sports"],
    ),
    (
        "es",
        "UEFA",
        "La final se traslada a Lisboa tras la inspección del estadio",
        5,
        ["europe"],
        ["sports"],
    ),
]


async def run_demo(
    settings: Settings, stop: threading.Event, *, every: float = 4.0, metrics: Metrics | None = None
) -> None:
    """Post samples until ``stop``; counted in ``metrics`` (the served app's, or the
    workers' shared files), so /metrics shows the demo's posts too."""
    import asyncio

    assert settings.redis_url is not None
    store = Store(settings.redis_url.get_secret_value(), prefix=settings.key_prefix)
    desk = Desk(store, settings, metrics)
    declared = {c.name for c in settings.channels}
    try:
        for channel, source, headline, urgency, regions, categories in itertools.cycle(SAMPLES):
            if stop.is_set():
                return
            if channel not in declared:
                continue
            item = ItemIn(
                headline=headline,
                source=source,
                urgency=urgency,
                regions=regions,
                categories=categories,
                ttl=timedelta(minutes=3),
            )
            try:
                await desk.post(channel, item, author="demo")
            except TickerError as exc:
                log.warning("demo post failed: %s", exc)
            await asyncio.sleep(every / 3)
    finally:
        await store.close()
