"""The Lua seam: every script names its KEYS and ARGV, the Python side passes them by the
same names, and the per-item index reaches data written before it existed."""

from __future__ import annotations

import re

import pytest

from tests.redis_data import keys_holding, rdb
from ticker.domain.models import ItemIn, ItemPatch
from ticker.newsroom.archive import Archive
from ticker.newsroom.desk import Desk
from ticker.settings import Settings
from ticker.store import Store, scripts
from ticker.store.scripts import Script, ScriptArgumentError

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("script", [scripts.load(n) for n in scripts.NAMES], ids=lambda s: s.name)
def test_each_script_uses_its_declared_names_only(script: Script) -> None:
    assert "KEYS[" not in script.body and "ARGV[" not in script.body
    for name in (*script.keys, *script.arg_names):
        assert re.search(rf"\b{name}\b", script.body), f"{script.name}: {name} is never used"
    assert len(set(script.keys) | set(script.arg_names)) == len(script.keys) + len(script.args)


def test_a_call_with_a_missing_or_unknown_name_is_refused() -> None:
    knows = scripts.load("knows")
    keys = {k: f"k:{k}" for k in knows.keys}
    assert knows.call(keys, {"entry_id": "1-0"}) == (["k:events"], ["1-0"])
    with pytest.raises(ScriptArgumentError, match="knows"):
        knows.call(keys, {"entry": "1-0"})
    with pytest.raises(ScriptArgumentError, match="knows"):
        knows.call({}, {"entry_id": "1-0"})


async def test_every_store_call_passes_the_names_its_script_declares(settings: Settings) -> None:
    """Run each script once through the store against a real Redis: ``Script.call``
    refuses any mismatch, so this fails if the Python side and a script drift apart."""
    assert settings.redis_url is not None
    store = Store(settings.redis_url.get_secret_value(), prefix=settings.key_prefix)
    desk = Desk(store, settings)
    try:
        item, _ = await desk.post("en", ItemIn(headline="Seam"), author="t", idempotency_key="k1")
        await desk.correct("en", item.uri, ItemPatch(headline="Seam, again"), author="t")
        await desk.kill("en", item.uri, author="t")
        await store.stream.snapshot("en")
        await store.stream.knows("en", item.id)
        await store.items.prune("en")
        await desk.purge("en", item.uri, reason="test", author="t")
        await store.items.audit("en", before=None, count=10)
        await store.tokens.authorize("ab" * 32, "en", now_ms=1, interval_ms=1.0, burst=1)
        await store.tokens.refund("ab" * 32, interval_ms=1.0)
        assert await store.tokens.by_hash("ab" * 32, now_ms=1) == (0, None)
        assert await store.tokens.create("n", "cd" * 32, {"name": "n", "sha256": "cd" * 32})
        assert await store.tokens.rotate("n", "ef" * 32, now_ms=1, grace_ms=1000)
        assert await store.tokens.revoke("n")
    finally:
        await store.close()


async def test_purge_reaches_items_written_before_the_index_existed(
    settings: Settings,
) -> None:
    assert settings.redis_url is not None
    store = Store(settings.redis_url.get_secret_value(), prefix=settings.key_prefix)
    desk = Desk(store, settings)
    try:
        item, _ = await desk.post("en", ItemIn(headline="Old libel"), author="t")
        await desk.correct("en", item.uri, ItemPatch(headline="Old libel, again"), author="t")
        # As an older ticker left it: no per-item index.
        client = rdb(settings)
        k = store.keys("en")
        client.delete(k.log, k.last, k.indexed)
        client.close()
        assert await store.items.prune("en") == 0  # indexes, forgets nothing still in the history
        await desk.purge("en", item.uri, reason="court order", author="t")
        assert keys_holding(settings, "Old libel") == []
    finally:
        await store.close()


async def test_the_queue_reaches_items_held_before_it_existed(settings: Settings) -> None:
    assert settings.redis_url is not None
    store = Store(settings.redis_url.get_secret_value(), prefix=settings.key_prefix)
    desk = Desk(store, settings)
    archive = Archive(store, settings)
    try:
        held, _ = await desk.post(
            "en", ItemIn(headline="Held long ago", status="withheld"), author="t"
        )
        await desk.post("en", ItemIn(headline="On air"), author="t")
        # As an older ticker left it: no index of held items.
        client = rdb(settings)
        k = store.keys("en")
        client.delete(k.held, k.held_indexed)
        client.close()
        assert await archive.queue("en") == []
        await store.items.prune("en")  # the sweeper's step: indexes what is held, once
        assert [i.uri for i in await archive.queue("en")] == [held.uri]
    finally:
        await store.close()
