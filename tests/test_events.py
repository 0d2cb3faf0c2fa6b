"""The SSE stream end to end: real uvicorn, real Redis, httpx-sse as the reader."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from typing import Any

import httpx
import pytest
import redis

from tests.helpers import serve_app
from tests.redis_data import big_entry, item_entry
from tests.sse import connected, start_reader
from ticker.domain.models import DESK_ONLY
from ticker.fanout import recent
from ticker.http.front import Front
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "channels": (
            Channel(name="en", history_max_items=30, live_max_items=25),
            Channel(name="ar", language="ar"),
        )
    }


@pytest.fixture(params=["front", "asgi"])
async def server(request: pytest.FixtureRequest, settings: Settings) -> Any:
    """Each stream test runs two ways: as ``ticker serve`` serves it (``front``: a stream
    on a new connection is served natively, one pipelined behind another request goes
    through ASGI with direct writes), and with plain ASGI sends (any other ASGI server)."""
    http = {"front": Front, "asgi": "httptools"}[request.param]
    async with serve_app(settings, http=http) as running:
        yield running


async def post(
    api: httpx.AsyncClient, headline: str, channel: str = "en", **fields: Any
) -> dict[str, Any]:
    """The item as readers get it: the writer's reply less the desk's fields (``author``,
    ``story``: readers are anonymous)."""
    r = await api.post(f"/channels/{channel}/items", json={"headline": headline, **fields})
    assert r.status_code == 201, r.text
    assert r.json()["author"] == "editor"
    return {k: v for k, v in r.json().items() if k not in DESK_ONLY}


def events_url(server: tuple[str, Any], channel: str = "en") -> str:
    return f"{server[0]}/channels/{channel}/events"


async def test_reader_gets_current_items_then_live_ones(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    first = await post(api, "Shooter at large", source="Police")
    second = await post(api, "Roads closed")
    reader = await connected(start_reader(events_url(server)), 2)
    try:
        assert reader.retry == 500
        assert [e["uri"] for e in reader.of("item")] == [first["uri"], second["uri"]]
        assert [e.id for e in reader.events] == [first["id"], second["id"]]
        live = await post(api, "Shooter arrested")
        await reader.wait_for(lambda r: len(r.events) == 3)
        assert reader.events[-1].event == "item" and reader.events[-1].id == live["id"]
        assert reader.of("item")[-1] == live
    finally:
        await reader.close()


def count_snapshot_reads(server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The channels whose current items are read from Redis, one entry per read."""
    store = server[1].state.services.store
    reads: list[str] = []
    read_from_redis = store.stream.snapshot

    async def counting(name: str) -> Any:
        reads.append(name)
        return await read_from_redis(name)

    monkeypatch.setattr(store.stream, "snapshot", counting)
    return reads


async def test_readers_connecting_one_after_another_get_the_ticker_as_it_is_then(
    api: httpx.AsyncClient, server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The current items are read from Redis once and shared by the readers that connect
    later, brought up to date by what the fan-out sent since: a killed item is never
    shown to a reader that connects after the kill, and a correction is shown as it is."""
    loads = count_snapshot_reads(server, monkeypatch)
    first = await post(api, "Shooter at large")
    keeper = await connected(start_reader(events_url(server)), 1)  # keeps the hub reading
    readers = [keeper]
    try:
        for _ in range(4):
            readers.append(await connected(start_reader(events_url(server)), 1))
        assert len(loads) == 1
        assert all([e.id for e in r.events] == [first["id"]] for r in readers)
        second = await post(api, "Shooter arrested")
        assert (await api.delete(f"/channels/en/items/{first['uri']}")).status_code == 200
        await keeper.wait_for(lambda r: len(r.events) == 3)  # the hub has moved on
        late = await connected(start_reader(events_url(server)), 1)
        readers.append(late)
        await asyncio.sleep(0.2)
        assert [(e.event, e.id) for e in late.events] == [("item", second["id"])]
        assert len(loads) == 1
        fixed = (
            await api.patch(
                f"/channels/en/items/{second['uri']}", json={"headline": "Arrested: suspect (32)"}
            )
        ).json()
        await keeper.wait_for(lambda r: len(r.events) == 4)
        later = await connected(start_reader(events_url(server)), 1)
        readers.append(later)
        assert [(e.event, e.id) for e in later.events] == [("item", fixed["id"])]
        assert json.loads(later.events[0].data)["headline"] == "Arrested: suspect (32)"
        assert len(loads) == 1
    finally:
        for reader in readers:
            await reader.close()


async def test_a_reader_opening_past_the_kept_batches_gets_a_fresh_read(
    api: httpx.AsyncClient, server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recent, "RECENT_MAX", 2)
    loads = count_snapshot_reads(server, monkeypatch)
    keeper = await connected(start_reader(events_url(server)))
    readers = [keeper]
    try:
        items = [await post(api, f"Update {n}") for n in range(4)]
        await keeper.wait_for(lambda r: len(r.events) == 4)
        assert len(loads) == 1  # the keeper's, on an empty ticker
        late = await connected(start_reader(events_url(server)), 4)
        readers.append(late)
        assert [e.id for e in late.events] == [i["id"] for i in items]
        assert len(loads) == 2  # four batches since the first read: only two were kept
    finally:
        for reader in readers:
            await reader.close()


async def test_corrections_holds_and_kills_reach_a_live_reader(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    uri = (await post(api, "Shooter at large"))["uri"]
    reader = await connected(start_reader(events_url(server)), 1)
    try:
        await api.patch(f"/channels/en/items/{uri}", json={"headline": "Shooter arrested"})
        await api.patch(f"/channels/en/items/{uri}", json={"status": "withheld"})
        await api.patch(f"/channels/en/items/{uri}", json={"headline": "Checked: arrested"})
        await api.patch(f"/channels/en/items/{uri}", json={"status": "usable"})
        await api.delete(f"/channels/en/items/{uri}")
        await reader.wait_for(lambda r: len(r.events) == 5)
        kinds = [
            (e.event, json.loads(e.data).get("headline") or json.loads(e.data)["reason"])
            for e in reader.events
        ]
        # The correction made while withheld is not shown to readers.
        assert kinds == [
            ("item", "Shooter at large"),
            ("item", "Shooter arrested"),
            ("remove", "withhold"),
            ("item", "Checked: arrested"),
            ("remove", "kill"),
        ]
        assert [json.loads(e.data)["uri"] for e in reader.events] == [uri] * 5
    finally:
        await reader.close()


async def test_resume_after_missing_twenty_events_gets_exactly_those(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    seen = await post(api, "the last one the reader saw")
    missed = [await post(api, f"missed {n}") for n in range(17)]
    for item in missed[:3]:
        await api.delete(f"/channels/en/items/{item['uri']}")  # removes are events too
    reader = await connected(
        start_reader(events_url(server), headers={"Last-Event-ID": seen["id"]}), 17
    )
    try:
        await asyncio.sleep(0.3)
        # The three killed items' text is not replayed (it is the desk's alone now); their
        # removals are, as they were sent live.
        assert len(reader.events) == 17
        assert [e.id for e in reader.events[:14]] == [m["id"] for m in missed[3:]]
        assert reader.of("remove") == [{"uri": m["uri"], "reason": "kill"} for m in missed[:3]]
        ids = [tuple(map(int, e.id.split("-"))) for e in reader.events]
        assert ids == sorted(set(ids))  # in order, no duplicates
        live = await post(api, "after the resume")
        await reader.wait_for(lambda r: r.events[-1].id == live["id"])
        assert len(reader.events) == 18
    finally:
        await reader.close()


async def test_last_event_id_as_query_parameter(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    seen = await post(api, "seen")
    missed = await post(api, "missed")
    reader = await connected(
        start_reader(events_url(server), params={"last_event_id": seen["id"]}), 1
    )
    try:
        await asyncio.sleep(0.2)
        assert [e.id for e in reader.events] == [missed["id"]]
    finally:
        await reader.close()


@pytest.mark.parametrize(
    "last_event_id",
    [
        "garbage",
        "1-2-3",
        "-1",
        "99999999999999-0",
        "1700000000000-0",
        "0-0",
        "1732640000000-0\r\nevent: spoof",
        "9" * 30 + "-0",
    ],
)
async def test_unusable_last_event_id_gets_reset_and_current_items(
    api: httpx.AsyncClient, server: tuple[str, Any], last_event_id: str
) -> None:
    item = await post(api, "on the ticker")
    params = {"last_event_id": last_event_id}
    reader = await connected(start_reader(events_url(server), params=params), 2)
    try:
        assert reader.events[0].event == "reset" and reader.events[0].id == ""
        assert reader.of("item") == [item]
    finally:
        await reader.close()


async def test_trimmed_last_event_id_gets_reset(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    oldest = await post(api, "soon trimmed", ttl="1m")
    for n in range(35):  # history_max_items is 30 in this module
        await post(api, f"filler {n}", ttl="1m")
    reader = await connected(
        start_reader(events_url(server), headers={"Last-Event-ID": oldest["id"]}), 26
    )
    try:
        assert reader.events[0].event == "reset"
        # live_max_items (25) pushed the oldest off the ticker; the current items follow.
        assert len(reader.of("item")) == 25
        assert oldest["uri"] not in {i["uri"] for i in reader.of("item")}
    finally:
        await reader.close()


async def test_filters_apply_to_current_and_live_items(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    europe = await post(api, "europe, routine", regions=["europe"], urgency=5)
    await post(api, "asia", regions=["asia"], urgency=1)
    params = {"region": "europe,latam", "max_urgency": "5"}
    reader = await connected(start_reader(events_url(server), params=params), 1)
    try:
        await post(api, "europe, low priority", regions=["europe"], urgency=7)
        flash = await post(api, "latam flash", regions=["latam"], urgency=1)
        await reader.wait_for(lambda r: len(r.events) >= 2)
        await asyncio.sleep(0.2)
        assert [i["uri"] for i in reader.of("item")] == [europe["uri"], flash["uri"]]
    finally:
        await reader.close()


async def test_a_regional_reader_gets_global_items_live_and_on_replay(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    params = {"region": "europe", "category": "politics"}
    first = await post(api, "before the reader: regional", regions=["europe"])
    reader = await connected(start_reader(events_url(server), params=params), 1)
    try:
        everyone = await post(api, "flash: for every region and category", urgency=1)
        await post(api, "asia only", regions=["asia"])
        await post(api, "sport only", categories=["sport"])
        mine = await post(api, "europe politics", regions=["europe"], categories=["politics"])
        await reader.wait_for(lambda r: len(r.of("item")) >= 3)
        live = [first["uri"], everyone["uri"], mine["uri"]]
        assert [i["uri"] for i in reader.of("item")] == live
    finally:
        await reader.close()
    # A returning reader gets the same items, from the history.
    resumed = await connected(
        start_reader(events_url(server), params=params, headers={"Last-Event-ID": first["id"]}),
        2,
    )
    try:
        await asyncio.sleep(0.2)  # anything else the replay would send
        assert [i["uri"] for i in resumed.of("item")] == live[1:]
    finally:
        await resumed.close()
    # And max_urgency still applies to global items.
    urgent = await connected(start_reader(events_url(server), params={"max_urgency": "2"}), 1)
    try:
        assert [i["uri"] for i in urgent.of("item")] == [everyone["uri"]]
    finally:
        await urgent.close()


@pytest.mark.parametrize(
    "params", [{"max_urgency": "0"}, {"max_urgency": "high"}, {"region": "Not A Slug"}]
)
async def test_bad_filter_is_422(server: tuple[str, Any], params: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        r = await client.get(events_url(server), params=params)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


async def test_two_readers_of_a_channel_share_one_redis_reader(
    api: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    _, app = server
    readers = [await connected(start_reader(events_url(server))) for _ in range(2)]
    try:
        item = await post(api, "both see this")
        for reader in readers:
            await reader.wait_for(lambda r: any(e.id == item["id"] for e in r.events))
        assert app.state.services.hub.reader_count == 1
        assert settings.redis_url is not None
        client = redis.Redis.from_url(settings.redis_url.get_secret_value())
        names = [c["name"] for c in client.client_list()]
        client.close()
        # This server's readers only: other ticker processes may share the Redis.
        assert names.count(f"ticker-reader:{settings.key_prefix}:en") == 1
    finally:
        for reader in readers:
            await reader.close()
    await asyncio.sleep(0.1)
    assert app.state.services.hub.reader_count == 0  # the last reader left: loop stopped


async def test_caught_up_readers_are_written_to_by_the_fan_out_itself(
    api: httpx.AsyncClient, server: tuple[str, Any], request: pytest.FixtureRequest
) -> None:
    """Under ``ticker serve``'s protocols a live reader costs no task wake-up per event;
    under plain ASGI its own task sends. Both deliver the same events."""
    direct = request.node.callspec.params["server"] != "asgi"
    hub = server[1].state.services.hub
    reader = await connected(start_reader(events_url(server)))
    try:
        items = [await post(api, f"item {n}") for n in range(3)]
        await reader.wait_for(lambda r: len(r.events) == 3)
        assert [e.id for e in reader.events] == [i["id"] for i in items]
        [sub] = hub.subscribers("en")
        assert (sub.socket is not None) is direct
    finally:
        await reader.close()


async def test_heartbeat_comments_keep_the_connection_alive(server: tuple[str, Any]) -> None:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(5, read=5)) as client,
        client.stream("GET", events_url(server)) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        seen = b""
        async for chunk in response.aiter_bytes():
            seen += chunk
            if b"\n\n:\n\n" in seen:  # a comment line after the opening retry
                break
        assert b"retry: 500" in seen


def _raw_stalled_reader(url: str, before: str = "") -> socket.socket:
    """A client that sends the request (after ``before``, pipelined), then never reads:
    its TCP window fills up."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    path = "/" + url.split("/", 3)[3]
    sock.sendall(f"{before}GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


async def _flood(settings: Settings, count: int) -> None:
    """Large entries written straight into the stream fill a stalled socket quickly."""
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    for n in range(count):
        if n % 20 == 0:
            await asyncio.sleep(0.05)  # separate XREAD batches, as in real traffic
        client.xadd(f"{settings.key_prefix}:{{en}}:events", big_entry(n, 8_000))
    client.close()


@pytest.mark.parametrize(
    "settings_overrides", [{"subscriber_buffer": 100_000, "send_timeout_s": 0.5}]
)
@pytest.mark.parametrize("pipelined", [False, True], ids=["alone", "pipelined"])
async def test_a_reader_that_stops_reading_is_dropped_after_the_send_timeout(
    server: tuple[str, Any],
    settings: Settings,
    request: pytest.FixtureRequest,
    pipelined: bool,
) -> None:
    """Alone on its connection the stream is served natively (under ticker's protocols);
    pipelined behind another request it goes through ASGI with direct writes."""
    _, app = server
    hub = app.state.services.hub
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign, assignment]
    logging.getLogger("uvicorn.error").addHandler(handler)
    before = "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n" if pipelined else ""
    fast = await connected(start_reader(events_url(server)))
    slow = await asyncio.to_thread(_raw_stalled_reader, events_url(server), before)
    try:
        await fast.wait_for(lambda r: hub.subscriber_count("en") == 2, timeout=5)
        await _flood(settings, 600)
        await fast.wait_for(lambda r: len(r.events) == 600, timeout=20)
        # Never cut off (its buffer is huge): its connection is dropped once writes to it
        # have waited for the send timeout, and the fast reader never waited for it.
        await fast.wait_for(lambda r: hub.subscriber_count("en") == 1, timeout=10)
        if request.node.callspec.params["server"] != "asgi":
            # ticker's protocols drop the connection itself (plain ASGI can only ask the
            # server to close it, which waits for the unsent bytes to go).
            slow.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                while slow.recv(1 << 20):
                    pass
            # Dropped as a closed connection, not an app that failed to answer.
            assert not errors, [r.getMessage() for r in errors]
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
        slow.close()
        await fast.close()


@pytest.mark.parametrize("settings_overrides", [{"subscriber_buffer": 20, "send_timeout_s": 30}])
async def test_slow_reader_is_cut_off_while_a_fast_one_keeps_up(
    server: tuple[str, Any], settings: Settings
) -> None:
    _, app = server
    hub = app.state.services.hub
    fast = await connected(start_reader(events_url(server)))
    slow = await asyncio.to_thread(_raw_stalled_reader, events_url(server))
    try:
        await asyncio.sleep(0.3)
        assert hub.subscriber_count("en") == 2
        await _flood(settings, 600)
        await fast.wait_for(lambda r: len(r.events) == 600, timeout=20)
        cut = {"channel": "en"}
        await fast.wait_for(
            lambda r: (
                hub.metrics.registry.get_sample_value("ticker_readers_cut_off_total", cut) == 1
            ),
            timeout=5,
        )
        assert hub.subscriber_count("en") == 1
        assert [json.loads(e.data)["uri"] for e in fast.events] == [f"big{n}" for n in range(600)]
    finally:
        slow.close()
        await fast.close()


async def test_shutdown_ends_open_streams(settings: Settings) -> None:
    from tests.helpers import serve_app

    async with serve_app(settings) as (url, _):
        reader = await connected(start_reader(f"{url}/channels/en/events"))
    await reader.wait_ended(settings.retry_ms)


@pytest.mark.parametrize(
    "settings_overrides",
    [{"read_batch": 5, "channels": (Channel(name="en", history_max_items=10),)}],
)
async def test_a_reader_overtaken_by_trimming_gets_a_reset_not_a_gap(
    server: tuple[str, Any], settings: Settings, api: httpx.AsyncClient
) -> None:
    _, app = server
    seen = await post(api, "seen")
    reader = await connected(start_reader(events_url(server)), 1)
    try:
        assert settings.redis_url is not None
        client = redis.Redis.from_url(settings.redis_url.get_secret_value())
        burst = item_entry("x", "burst", author="t")
        with client.pipeline(transaction=True) as pipe:  # 50 entries at once: 40 trimmed
            for _ in range(50):
                pipe.xadd(
                    f"{settings.key_prefix}:{{en}}:events",
                    burst,
                    maxlen=10,
                    approximate=False,
                )
            pipe.execute()
        client.close()
        await reader.wait_ended(settings.retry_ms)  # ended, not fed a hole
        metrics = app.state.services.hub.metrics
        assert (
            metrics.registry.get_sample_value("ticker_readers_resynced_total", {"channel": "en"})
            == 1
        )
        assert [e.id for e in reader.events] == [seen["id"]]
    finally:
        await reader.close()
    again = await connected(
        start_reader(events_url(server), headers={"Last-Event-ID": seen["id"]}), 1
    )
    try:
        assert again.events[0].event == "reset"
    finally:
        await again.close()


async def test_direct_writes_can_be_switched_off(settings: Settings, token: str) -> None:
    """``TICKER_DIRECT_WRITES=false``: ticker's protocol, every event through ASGI sends."""
    off = settings.model_copy(update={"direct_writes": False})
    async with (
        serve_app(off) as running,
        httpx.AsyncClient(
            base_url=running[0], headers={"Authorization": f"Bearer {token}"}, timeout=5
        ) as client,
    ):
        reader = await connected(start_reader(events_url(running)))
        try:
            item = await post(client, "through ASGI")
            await reader.wait_for(lambda r: any(e.id == item["id"] for e in r.events))
            [sub] = running[1].state.services.hub.subscribers("en")
            assert sub.socket is None
        finally:
            await reader.close()
