"""The stream readers in clients/ against a real Redis and a real ticker: what editors post
through the API reaches them decoded per docs/streams.md; a consumer group shares the work
and takes over what a dead consumer left pending."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import PY_READER, TickerProcess, load_python_reader, make_token
from ticker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NODE_CLIENT = ROOT / "clients" / "node"

pytestmark = pytest.mark.server_per_module


@pytest.fixture(scope="module")
def module_server_env() -> dict[str, str]:
    # en shows kill notices: a kill's note is in its entry, and the readers print it.
    channels = [{"name": "en", "kill_notices": True}, {"name": "ar", "language": "ar"}]
    return {"TICKER_CHANNELS": json.dumps([*channels, {"name": "es", "language": "es"}])}


reader = load_python_reader("ticker_stream_reader")


class Crash(BaseException):
    """A consumer process dying mid-batch: nothing after it runs, nothing is acked."""


def _url(settings: Settings) -> str:
    assert settings.redis_url is not None
    return settings.redis_url.get_secret_value()


def _group_reader(settings: Settings, consumer: str, **options: Any) -> Any:
    client = reader.connect(_url(settings), block_ms=100)
    key = reader.stream_key("en", settings.key_prefix)
    options = {"start": "0", "block_ms": 100, **options}
    r = reader.GroupReader(client, key, "indexer", consumer, **options)
    r.ensure_group()
    return r


def _drain(r: Any, want: int, timeout: float = 10.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        assert time.monotonic() < deadline, f"only {len(got)} of {want} events"
        r.poll(got.append)
    return got


def _printed(entry: dict[str, Any], uri: str, headline: str, **fields: Any) -> dict[str, Any]:
    """The line both reader commands print for ``entry`` (the API's reply to the write
    that made it): an item event's defaults, ``fields`` changing any of them."""
    event = {"type": "item", "reason": None, "version": 1, "status": "usable"}
    event |= {"embargoed_until": None, "notice": None, "kind": "headline", **fields}
    return {"id": entry["id"], "uri": uri, "headline": headline, **event}


def _killed(entry: dict[str, Any], uri: str, headline: str, **fields: Any) -> dict[str, Any]:
    """The line printed for a kill: a remove of the item's last version, ``canceled``."""
    return _printed(
        entry,
        uri,
        headline,
        type="remove",
        reason="kill",
        version=entry["version"],
        status="canceled",
        **fields,
    )


def test_reader_decodes_what_editors_post(ticker_server: TickerProcess, settings: Settings) -> None:
    first = ticker_server.post("en", headline="Rotterdam shooter arrested", urgency=2)
    second = ticker_server.post("en", headline="Markets fall")
    fixed = ticker_server.patch("en", first["uri"], headline="Rotterdam shooter arrested, police")
    killed = ticker_server.kill("en", second["uri"])

    r = _group_reader(settings, "c1")
    try:
        events = _drain(r, 4)
        assert r.client.xpending(r.key, r.group)["pending"] == 0  # all acknowledged
    finally:
        r.client.close()

    assert [(e.type, e.uri, e.reason) for e in events] == [
        ("item", first["uri"], None),
        ("item", second["uri"], None),
        ("item", first["uri"], None),
        ("remove", second["uri"], "kill"),
    ]
    assert [e.headline for e in events] == [
        first["headline"],
        second["headline"],
        fixed["headline"],
        second["headline"],
    ]
    assert [e.version for e in events] == [1, 1, 2, killed["version"]]
    assert [e.status for e in events] == ["usable", "usable", "usable", "canceled"]
    # The item's id is the ID of the entry that made the version (the API says the same).
    assert [e.item["id"] for e in events] == [e.id for e in events]
    assert [first["id"], second["id"], fixed["id"], killed["id"]] == [e.id for e in events]
    assert all(e.v == "1" and e.item["channel"] == "en" for e in events)


def test_reader_tells_items_waiting_for_sign_off_from_those_on_air(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    stringer = {"Authorization": f"Bearer {make_token(settings, 'c', ['en'], 'contributor')}"}
    base = f"{ticker_server.url}/channels/en/items"
    waiting = [
        httpx.post(base, json={"headline": h}, headers=stringer, timeout=10).json()["uri"]
        for h in ("Tip: dyke breach", "Tip: minister quits")
    ]
    editor = {"Authorization": f"Bearer {ticker_server.token}"}
    r = httpx.post(f"{base}/{waiting[0]}/approve", headers=editor, timeout=10)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{base}/{waiting[1]}/reject", json={"note": "No"}, headers=editor, timeout=10)
    assert r.status_code == 200, r.text

    r = _group_reader(settings, "c1")
    try:
        events = _drain(r, 4)
    finally:
        r.client.close()
    assert [(e.uri, e.status, e.on_air()) for e in events] == [
        (waiting[0], "pending", False),
        (waiting[1], "pending", False),
        (waiting[0], "usable", True),
        (waiting[1], "rejected", False),
    ]
    assert events[2].item["approved_by"] == "server-editor"
    assert events[3].item["rejection_note"] == "No"


def test_an_unknown_schema_version_stops_the_reader_unacknowledged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # A channel no ticker reads, so the test may write entries of its own.
    client = reader.connect(_url(settings), block_ms=100)
    key = reader.stream_key("readertest", settings.key_prefix)
    try:
        item = json.dumps({"uri": "u1", "headline": "Hello", "version": 1, "status": "usable"})
        broken = client.xadd(key, {"v": "1", "type": "item", "uri": "u0", "item": "{not json"})
        good = client.xadd(key, {"v": "1", "type": "item", "uri": "u1", "item": item})
        future = client.xadd(key, {"v": "2", "type": "item", "uri": "u0", "item": "{}"})
        client.xadd(key, {"v": "1", "type": "item", "uri": "u1", "item": item})
        r = reader.GroupReader(client, key, "g", "c1", start="0", block_ms=100)
        r.ensure_group()
        r.ensure_group()  # a second start keeps the group (BUSYGROUP is not an error)
        seen: list[Any] = []
        with (
            caplog.at_level(logging.WARNING, logger="ticker.reader"),
            pytest.raises(reader.UnknownSchema, match=f"entry {future} has schema version v='2'"),
        ):
            r.poll(seen.append)
        assert [(e.id, e.uri, e.headline, e.item["id"]) for e in seen] == [
            (good, "u1", "Hello", good)
        ]
        assert broken in caplog.text  # a known v that does not decode: logged, acked
        # The unknown entry and the rest of its batch wait for an upgraded reader.
        assert client.xpending(key, "g")["pending"] == 2
    finally:
        client.close()


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LATER, EARLIER = "2026-12-06T13:00:00Z", "2026-12-06T11:00:00Z"
USABLE = {"status": "usable", "expires_at": LATER}
ON_AIR_CASES: list[tuple[dict[str, Any], bool]] = [
    (USABLE, True),
    ({**USABLE, "expires_at": "2026-12-06T13:00:00+00:00", "embargoed_until": None}, True),
    ({**USABLE, "embargoed_until": EARLIER}, True),
    ({**USABLE, "embargoed_until": "2026-12-06T12:30:00Z"}, False),  # still embargoed
    ({**USABLE, "expires_at": "2026-12-06T12:00:00Z"}, False),  # expires now: gone
    ({**USABLE, "expires_at": EARLIER}, False),
    ({**USABLE, "status": "withheld"}, False),
    ({**USABLE, "status": "canceled"}, False),
    # Sign-off: waiting for it, or refused it, is never on air (whatever else it says).
    ({**USABLE, "status": "pending"}, False),
    ({**USABLE, "status": "pending", "embargoed_until": EARLIER}, False),
    ({**USABLE, "status": "rejected", "rejected_by": "desk", "rejection_note": "No"}, False),
    ({**USABLE, "approved_by": "desk"}, True),
    ({"uri": "u", "channel": "en", "status": "canceled", "purged": True}, False),
    ({**USABLE, "kind": "headline"}, True),
    ({**USABLE, "kind": "advisory"}, False),  # a note for the desk: never on air
]


@pytest.mark.parametrize(("item", "expected"), ON_AIR_CASES)
def test_on_air_is_the_documented_rule(item: dict[str, Any], expected: bool) -> None:
    assert reader.on_air(item, NOW) is expected


def test_the_consumer_example_in_the_readme_publishes_no_embargoed_item(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    """Run the README's handler on what a real ticker writes."""
    readme = (PY_READER.parent / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    handler_code = block.split("\nclient = ", 1)[0]
    published: dict[str, str] = {}

    class Search:
        def upsert(self, uri: str, headline: str, item: dict[str, Any]) -> None:
            published[uri] = headline

        def delete(self, uri: str) -> None:
            published.pop(uri, None)

    scope: dict[str, Any] = {"search": Search()}
    sys.modules["reader"] = reader  # the example imports the copied file as ``reader``
    try:
        exec(compile(handler_code, "README.md", "exec"), scope)
    finally:
        del sys.modules["reader"]
    later = ticker_server.post("en", headline="Results at noon", embargo="1h")
    now = ticker_server.post("en", headline="Storm on the coast")
    held = ticker_server.post("en", headline="Not yet", status="withheld")
    client = reader.connect(_url(settings), block_ms=100)
    r = reader.GroupReader(client, reader.stream_key("en", settings.key_prefix), "example", "c1")
    r.start, r.block_ms = "0", 100
    r.ensure_group()
    try:
        for event in _all(r):
            scope["index"](event)
    finally:
        r.client.close()
    assert now["uri"] in published
    assert later["uri"] not in published and held["uri"] not in published


def _all(r: Any) -> list[Any]:
    """Every entry the group has left to give, handled by ``list.append``."""
    got: list[Any] = []
    while r.poll(got.append):
        pass
    return got


def test_two_consumers_in_a_group_share_the_work(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    posted = [ticker_server.post("en", headline=f"Item {i}")["id"] for i in range(10)]
    a = _group_reader(settings, "a", count=3)
    b = _group_reader(settings, "b", count=3)
    done: dict[str, list[str]] = {"a": [], "b": []}
    try:
        deadline = time.monotonic() + 10
        while len(done["a"]) + len(done["b"]) < len(posted):
            assert time.monotonic() < deadline, done
            a.poll(lambda e: done["a"].append(e.id))
            b.poll(lambda e: done["b"].append(e.id))
        assert a.client.xpending(a.key, a.group)["pending"] == 0
    finally:
        a.client.close()
        b.client.close()
    assert done["a"] and done["b"], done
    assert not set(done["a"]) & set(done["b"])  # each entry went to exactly one consumer
    assert sorted(done["a"] + done["b"]) == sorted(posted)


def test_a_dead_consumers_entries_are_claimed_by_another(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    posted = [ticker_server.post("en", headline=f"Item {i}")["id"] for i in range(6)]
    a = _group_reader(settings, "a", count=10)
    b = _group_reader(settings, "b", count=10, min_idle_ms=300)
    by_a: list[str] = []
    by_b: list[str] = []

    def a_dies_on_the_third(event: Any) -> None:
        if len(by_a) == 2:
            raise Crash
        by_a.append(event.id)

    try:
        with pytest.raises(Crash):
            a.poll(a_dies_on_the_third)  # read all six, handled and acked two, then died
        pending = a.client.xpending(a.key, a.group)
        assert pending["pending"] == 4 and pending["consumers"] == [{"name": "a", "pending": 4}]

        b.poll(lambda e: by_b.append(e.id))  # not idle long enough yet, and nothing new
        assert by_b == []
        time.sleep(0.35)
        b.poll(lambda e: by_b.append(e.id))  # XAUTOCLAIM takes over a's four
        assert b.client.xpending(b.key, b.group)["pending"] == 0
    finally:
        a.client.close()
        b.client.close()
    assert by_a == posted[:2]
    assert by_b == posted[2:]
    assert set(by_a) | set(by_b) == set(posted)  # every entry handled at least once


def test_a_failing_handler_leaves_the_entry_pending_for_a_retry(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    posted = [ticker_server.post("en", headline=f"Item {i}")["id"] for i in range(3)]
    r = _group_reader(settings, "c1", min_idle_ms=50)
    handled: list[str] = []
    failures = [posted[1]]

    def flaky(event: Any) -> None:
        if event.id in failures:
            failures.remove(event.id)
            raise RuntimeError("index unavailable")
        handled.append(event.id)

    try:
        assert r.poll(flaky) == 2  # the rest of the batch goes on
        assert r.client.xpending(r.key, r.group)["pending"] == 1
        time.sleep(0.1)
        assert r.poll(flaky) == 1  # claimed back (by itself) and retried
        assert r.client.xpending(r.key, r.group)["pending"] == 0
    finally:
        r.client.close()
    assert handled == [posted[0], posted[2], posted[1]]


def test_python_reader_command_prints_events(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    item = ticker_server.post("en", headline="Storm warning for the coast")
    killed = ticker_server.kill("en", item["uri"], notice="Withdrawn: no storm")
    note = ticker_server.post("en", headline="Coast guard briefing at 18:30", kind="advisory")
    out = subprocess.run(
        [
            sys.executable,
            str(PY_READER),
            "--redis",
            _url(settings),
            "--prefix",
            settings.key_prefix,
            "--channel",
            "en",
            "--group",
            "cli",
            "--consumer",
            "c1",
            "--start",
            "0",
            "--block-ms",
            "200",
            "--limit",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    storm = "Storm warning for the coast"
    assert lines == [
        _printed(item, item["uri"], storm),
        _killed(killed, item["uri"], storm, notice="Withdrawn: no storm"),
        _printed(note, note["uri"], "Coast guard briefing at 18:30", kind="advisory"),
    ]


def test_python_reader_command_stops_on_an_unknown_schema_version(settings: Settings) -> None:
    with _a_future_entry(settings, "readercli") as (client, key, future):
        out = subprocess.run(
            [sys.executable, str(PY_READER), "--redis", _url(settings)]
            + ["--prefix", settings.key_prefix, "--channel", "readercli", "--group", "cli"]
            + ["--start", "0", "--block-ms", "200", "--limit", "1"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        _stopped_unacknowledged(out, client, key, "cli", f"entry {future} has schema version v='2'")


# -- the Node.js reader ------------------------------------------------------------------


@contextlib.contextmanager
def _a_future_entry(settings: Settings, channel: str) -> Iterator[tuple[Any, str, str]]:
    """(client, key, id) of an entry of a schema version no reader knows (``v=2``), in a
    channel no ticker reads, so the test may write entries of its own."""
    client = reader.connect(_url(settings), block_ms=100)
    key = reader.stream_key(channel, settings.key_prefix)
    try:
        yield client, key, client.xadd(key, {"v": "2", "type": "item", "uri": "u0", "item": "{}"})
    finally:
        client.close()


def _stopped_unacknowledged(
    out: subprocess.CompletedProcess[str], client: Any, key: str, group: str, message: str
) -> None:
    """A reader command met an entry it cannot read: exit 3, ``message`` on stderr,
    nothing printed, and the entry left pending for an upgraded reader."""
    assert out.returncode == 3, out.stderr
    assert message in out.stderr
    assert out.stdout == ""
    assert client.xpending(key, group)["pending"] == 1  # not acknowledged


def _node() -> str:
    """The ``node`` binary (the reader needs no npm package: it speaks RESP itself)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("the Node.js reader tests need node (apt-get install nodejs)")
    return node


def _node_reader(settings: Settings, *args: str, **popen: Any) -> subprocess.Popen[str]:
    key = reader.stream_key("en", settings.key_prefix)
    return subprocess.Popen(
        [_node(), "reader.mjs", "--url", _url(settings), "--key", key, *args],
        cwd=NODE_CLIENT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _node_lines(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    try:
        stdout, stderr = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the Node.js reader hung") from None
    assert proc.returncode == 0, stderr
    return [json.loads(line) for line in stdout.splitlines()]


def test_node_reader_decodes_what_editors_post(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    first = ticker_server.post("en", headline="Rotterdam shooter arrested")
    second = ticker_server.post("en", headline="مرحبا: Markets fall", kind="advisory")
    killed = ticker_server.kill("en", first["uri"], notice="سُحب: غير مؤكد")
    lines = _node_lines(_node_reader(settings, "--count", "3", "--timeout", "20"))
    assert lines == [
        _printed(first, first["uri"], "Rotterdam shooter arrested"),
        _printed(second, second["uri"], "مرحبا: Markets fall", kind="advisory"),
        _killed(killed, first["uri"], "Rotterdam shooter arrested", notice="سُحب: غير مؤكد"),
    ]


def test_node_group_reader_handles_each_item_once_and_resumes_after_a_restart(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    posted = [ticker_server.post("en", headline=f"Item {i}")["id"] for i in range(3)]
    group = ("--group", "wire", "--consumer", "n1", "--start", "0", "--timeout", "20")
    # Stops after two: the third was read in the same batch, and stays pending for n1.
    first = _node_lines(_node_reader(settings, *group, "--count", "2"))
    client = reader.connect(_url(settings))
    key = reader.stream_key("en", settings.key_prefix)
    try:
        assert client.xpending(key, "wire")["pending"] == 1
        second_run = _node_reader(settings, *group, "--count", "4")
        posted += [ticker_server.post("en", headline=f"Later {i}")["id"] for i in range(3)]
        second = _node_lines(second_run)
        assert client.xpending(key, "wire")["pending"] == 0  # every one acknowledged
    finally:
        client.close()
    assert [e["id"] for e in first] == posted[:2]
    assert [e["id"] for e in second] == posted[2:]  # the pending one first, then the new


def test_node_group_reader_claims_a_dead_consumers_entries(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    posted = [ticker_server.post("en", headline=f"Item {i}")["id"] for i in range(4)]
    dead = _group_reader(settings, "dead")
    try:
        # Delivered to "dead", which never acknowledges: a consumer that crashed.
        dead.read()
        assert dead.client.xpending(dead.key, dead.group)["pending"] == 4
        lines = _node_lines(
            _node_reader(
                settings,
                *("--group", "indexer", "--consumer", "alive", "--min-idle-ms", "50"),
                *("--count", "4", "--timeout", "20"),
            )
        )
        pending = dead.client.xpending(dead.key, dead.group)
    finally:
        dead.client.close()
    assert [e["id"] for e in lines] == posted
    assert pending["pending"] == 0


def test_node_reader_stops_on_an_unknown_schema_version(settings: Settings) -> None:
    with _a_future_entry(settings, "nodecli") as (client, key, future):
        proc = subprocess.run(
            [_node(), "reader.mjs", "--url", _url(settings), "--key", key]
            + ["--group", "g", "--start", "0", "--count", "1", "--timeout", "5"],
            cwd=NODE_CLIENT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        _stopped_unacknowledged(proc, client, key, "g", f'entry {future} has schema version v="2"')


def test_node_on_air_agrees_with_the_python_one() -> None:
    script = (
        "import { onAir } from './reader.mjs';"
        "const [now, cases] = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(cases.map((c) => onAir(c, new Date(now)))));"
    )
    cases = [item for item, _ in ON_AIR_CASES]
    out = subprocess.run(
        [_node(), "--input-type=module", "-e", script, json.dumps([NOW.isoformat(), cases])],
        cwd=NODE_CLIENT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(out.stdout) == [expected for _, expected in ON_AIR_CASES]
