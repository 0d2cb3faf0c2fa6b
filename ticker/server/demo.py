"""``ticker serve --demo``: a sample headline now and then, so a new page is alive.

Gentle on purpose: a post every ``DEMO_EVERY`` (taking turns between the channels) that
leaves the ticker after ``DEMO_TTL``, so at most a handful of demo items share a channel's
bar and an editor's own posts are never pushed off it (``live_max_items`` is 20 by default).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from datetime import timedelta

from ticker.domain.errors import TickerError
from ticker.domain.models import ItemIn
from ticker.newsroom.desk import Desk
from ticker.ops.metrics import Metrics
from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.demo")

DEMO_EVERY = timedelta(seconds=20)
DEMO_TTL = timedelta(minutes=5)

# (channel, source, headline, urgency, regions, categories)
SAMPLES = [
    (
        "en",
        "Met Office",
        "Amber wind warning for the west coast tonight",
        3,
        ["europe"],
        ["weather"],
    ),
    (
        "ar",
        "هيئة الأرصاد",
        "تحذير من رياح قوية على الساحل الغربي الليلة",
        3,
        ["europe"],
        ["weather"],
    ),
    (
        "es",
        "AEMET",
        "Aviso naranja por viento en la costa oeste esta noche",
        3,
        ["europe"],
        ["weather"],
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
    settings: Settings,
    stop: threading.Event,
    *,
    every: timedelta = DEMO_EVERY,
    ttl: timedelta = DEMO_TTL,
    metrics: Metrics | None = None,
) -> None:
    """Post samples until ``stop``; counted in ``metrics`` (the served app's, or the
    workers' shared files), so /metrics shows the demo's posts too."""
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
                ttl=ttl,
                force=True,  # the samples come round again within the duplicate window
            )
            try:
                await desk.post(channel, item, author="demo")
            except TickerError as exc:
                log.warning("demo post failed: %s", exc)
            # In short steps, so that stopping the service does not wait for the next post.
            waited = 0.0
            while waited < every.total_seconds() and not stop.is_set():
                step = min(0.5, every.total_seconds() - waited)
                await asyncio.sleep(step)
                waited += step
    finally:
        await store.close()
