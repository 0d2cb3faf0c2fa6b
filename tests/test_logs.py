"""Log lines: JSON objects on stderr, request IDs, an access line per request, no secrets."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import structlog

from tests.helpers import TickerProcess, wait_until
from ticker.ops import logs
from ticker.ops.logs import RequestId, new_request_id, sanitize_request_id

# -- the request ID sanitizer ---------------------------------------------------------------


@pytest.mark.parametrize(
    "given", ["abc-123", "A.b_c-9", "x" * 64, "0", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"]
)
def test_a_sane_request_id_is_kept(given: str) -> None:
    assert sanitize_request_id(given) == given
    assert sanitize_request_id(given.encode()) == given


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "x" * 65,
        "has space",
        "semi;colon",
        "new\nline",
        "tab\t",
        "a/b",
        "ünï",
        'quote"',
        "{json}",
        "abc\r\nX-Evil: 1",
        b"\xff\xfe",
    ],
)
def test_an_insane_request_id_is_refused(given: str | bytes | None) -> None:
    assert sanitize_request_id(given) is None


def test_a_new_request_id_is_sane_and_unique() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(sanitize_request_id(i) == i and len(i) == 32 for i in ids)


# -- formats ---------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_format_is_console_on_a_terminal_and_json_elsewhere() -> None:
    assert logs.resolve_format("auto", _Tty()) == "console"
    assert logs.resolve_format("auto", io.StringIO()) == "json"
    assert logs.resolve_format("json", _Tty()) == "json"
    assert logs.resolve_format("console", io.StringIO()) == "console"


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        logs.dict_config("loud", "json")


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, dict[str, io.StringIO]]]:
    """A private logger whose records go through both formatters into two buffers."""
    logger = logging.getLogger(f"ticker.test-{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    out: dict[str, io.StringIO] = {}
    for fmt in ("json", "console"):
        out[fmt] = io.StringIO()
        handler = logging.StreamHandler(out[fmt])
        handler.setFormatter(logs.formatter(fmt))
        logger.addHandler(handler)
    try:
        yield logger, out
    finally:
        logger.handlers.clear()


def test_a_record_becomes_one_json_object_per_line(
    captured: tuple[logging.Logger, dict[str, io.StringIO]],
) -> None:
    logger, out = captured
    with structlog.contextvars.bound_contextvars(request_id="rid-1"):
        logger.info("hello %s\nsecond line", "world", extra={"status": 201, "secret": "s3cr3t"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    lines = out["json"].getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert list(first)[:4] == ["timestamp", "level", "logger", "message"]
    assert first["level"] == "info" and first["logger"] == logger.name
    assert first["message"] == "hello world\nsecond line"
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert first["request_id"] == "rid-1" and first["status"] == 201
    assert "secret" not in first  # only the named extra fields get through
    assert second["level"] == "error" and "request_id" not in second
    assert second["exception"].startswith("Traceback")
    assert "RuntimeError: boom" in second["exception"]

    console = out["console"].getvalue().splitlines()
    assert console[0] == f"INFO {logger.name}: hello world"
    assert console[1] == "second line request_id=rid-1"
    assert console[2] == f"ERROR {logger.name}: failed"
    assert console[3] == "Traceback (most recent call last):"
    assert "s3cr3t" not in out["console"].getvalue()


# -- the middleware, in process ------------------------------------------------------------


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    """``ticker.access`` as JSON lines in a buffer."""
    logger = logging.getLogger("ticker.access")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.formatter("json"))
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _scope(headers: list[tuple[bytes, bytes]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/channels/en/events",
        "raw_path": b"/channels/en/events",
        "query_string": b"token=q-secret",
        "headers": headers or [],
        "client": ("203.0.113.7", 50123),
        **extra,
    }


async def _receive(*_: Any) -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def _call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await RequestId(app)(scope, _receive, send)
    return sent


seen: dict[str, Any] = {}  # what the app saw of the logging context
BODIES = [
    {"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True} for i in range(3)
]


async def _stream(scope: Any, receive: Any, send: Any) -> None:
    seen["request_id"] = structlog.contextvars.get_contextvars().get("request_id")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    for message in BODIES:
        await send(message)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.mark.anyio
async def test_the_middleware_touches_only_the_response_start(access_lines: io.StringIO) -> None:
    sent = await _call(_stream, _scope([(b"x-request-id", b"req-42")]))
    assert sent[0]["headers"] == [
        (b"content-type", b"text/event-stream"),
        (b"x-request-id", b"req-42"),
    ]
    # Every event goes to the server as the app sent it: the same objects, no copies.
    assert all(a is b for a, b in zip(sent[1:4], BODIES, strict=True))
    assert seen["request_id"] == "req-42"  # bound while the app runs
    assert "request_id" not in structlog.contextvars.get_contextvars()  # and not after
    (line,) = [json.loads(x) for x in access_lines.getvalue().splitlines()]
    assert line["logger"] == "ticker.access" and line["level"] == "info"
    assert {k: line[k] for k in ("request_id", "method", "path", "status", "client")} == {
        "request_id": "req-42",
        "method": "GET",
        "path": "/channels/en/events",
        "status": 200,
        "client": "203.0.113.7",
    }
    assert isinstance(line["duration_ms"], float)
    assert "q-secret" not in access_lines.getvalue()


@pytest.mark.anyio
async def test_a_missing_or_insane_request_id_is_replaced(access_lines: io.StringIO) -> None:
    bad = b"x" * 65
    for headers in ([], [(b"x-request-id", bad)], [(b"x-request-id", b"a b")]):
        sent = await _call(_stream, _scope(headers))
        echoed = dict(sent[0]["headers"])[b"x-request-id"].decode()
        assert sanitize_request_id(echoed) == echoed and len(echoed) == 32
        assert seen["request_id"] == echoed
    text = access_lines.getvalue()
    assert len(text.splitlines()) == 3
    assert bad.decode() not in text and "a b" not in text


@pytest.mark.anyio
async def test_a_failing_app_still_gets_an_access_line(access_lines: io.StringIO) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        await _call(broken, _scope([(b"x-request-id", b"req-err")], raw_path=None))
    line = json.loads(access_lines.getvalue())
    assert line["status"] == 500 and line["request_id"] == "req-err"
    assert line["path"] == "/channels/en/events"
    assert "request_id" not in structlog.contextvars.get_contextvars()


@pytest.mark.anyio
async def test_lifespan_and_other_scopes_pass_through(access_lines: io.StringIO) -> None:
    calls = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    await RequestId(app)({"type": "lifespan"}, _receive, cast(Any, _receive))
    assert calls == ["lifespan"] and access_lines.getvalue() == ""


# -- a real `ticker serve` -------------------------------------------------------------------


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    return {"TICKER_LOG_FORMAT": "json"}


def _lines(log: Path) -> list[dict[str, Any]]:
    """Every line the process wrote (stdout and stderr), each parsed as a JSON object."""
    parsed = []
    for line in log.read_text().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(obj, dict), line
        assert {"timestamp", "level", "logger", "message"} <= obj.keys(), line
        parsed.append(obj)
    return parsed


def _access(log: Path, request_id: str) -> dict[str, Any] | None:
    for line in _lines(log):
        if line["logger"] == "ticker.access" and line.get("request_id") == request_id:
            return line
    return None


def test_json_logs_carry_request_ids_and_no_secret(ticker_server: TickerProcess) -> None:
    assert ticker_server.log is not None
    query_secret = f"qs-{uuid.uuid4().hex}"
    fake_token = f"tk_{uuid.uuid4().hex}"
    url = ticker_server.url
    with httpx.Client(timeout=10) as client:
        posted = client.post(
            f"{url}/channels/en/items",
            params={"token": query_secret},
            json={"headline": "logged without its secrets"},
            headers={
                "Authorization": f"Bearer {ticker_server.token}",
                "X-Request-ID": "req-post-1",
                "Cookie": f"session={query_secret}",
            },
        )
        assert posted.status_code == 201, posted.text
        assert posted.headers["x-request-id"] == "req-post-1"
        refused = client.get(
            f"{url}/channels/en/items?access_token={query_secret}",
            headers={"Authorization": f"Bearer {fake_token}"},
        )
        generated = refused.headers["x-request-id"]
        assert sanitize_request_id(generated) == generated
        insane = "bad id;" + "x" * 80
        replaced = client.get(f"{url}/channels", headers={"X-Request-ID": insane})
        assert replaced.headers["x-request-id"] not in (insane, generated)

    line = wait_until(lambda: _access(ticker_server.log, "req-post-1"))
    assert (line["method"], line["path"], line["status"]) == ("POST", "/channels/en/items", 201)
    assert line["level"] == "info" and line["client"] == "127.0.0.1"
    assert line["duration_ms"] >= 0
    assert wait_until(lambda: _access(ticker_server.log, generated))["path"] == "/channels/en/items"
    assert wait_until(lambda: _access(ticker_server.log, replaced.headers["x-request-id"]))

    assert ticker_server.stop() == 0
    lines = _lines(ticker_server.log)
    assert any(x["logger"] == "uvicorn.error" for x in lines)  # uvicorn's own lines too
    assert not any(x["logger"] == "uvicorn.access" for x in lines)  # ours replace them
    text = ticker_server.log.read_text()
    for secret in (
        query_secret,
        fake_token,
        ticker_server.token,
        "access_token",
        "Bearer",
        insane[:20],
    ):
        assert secret not in text


def test_a_stream_is_logged_when_it_ends(ticker_server: TickerProcess) -> None:
    assert ticker_server.log is not None
    with httpx.stream(
        "GET",
        f"{ticker_server.url}/channels/en/events?region=europe",
        headers={"X-Request-ID": "req-stream-1"},
        timeout=10,
    ) as r:
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-stream-1"
        # Keep the iterator: a generator dropped after one ``next`` is closed at once, and
        # with it the connection (the stream then ends, and is logged, a few ms later).
        chunks = r.iter_raw()
        next(chunks)  # the stream is open: the head has arrived
        time.sleep(0.3)  # time enough for an ended stream to be logged
        assert _access(ticker_server.log, "req-stream-1") is None  # not while it runs
    line = wait_until(lambda: _access(ticker_server.log, "req-stream-1"), timeout=15)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/channels/en/events", 200)
    assert line["duration_ms"] > 0 and "europe" not in json.dumps(line)


def test_every_worker_logs_json(ticker_server: TickerProcess, tmp_path: Path) -> None:
    # auto: the log is a file, not a terminal, so JSON.
    env = {**ticker_server.env, "TICKER_LOG_FORMAT": "auto"}
    two = TickerProcess(env, args=("--workers", "2"), log=tmp_path / "w2.log")
    assert two.log is not None
    two.start(timeout=40)
    try:
        ids = [f"req-w-{i}" for i in range(6)]
        for request_id in ids:
            r = httpx.get(f"{two.url}/channels", headers={"X-Request-ID": request_id}, timeout=5)
            assert r.headers["x-request-id"] == request_id
        for request_id in ids:
            wait_until(lambda request_id=request_id: _access(two.log, request_id))
    finally:
        assert two.stop() == 0
    lines = _lines(two.log)
    started = {x["message"] for x in lines if x["message"].startswith("Started server process")}
    assert len(started) == 2  # both workers' own lines, as JSON


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok", "more_body": False})


@pytest.mark.anyio
async def test_health_probes_and_scrapes_are_logged_at_debug_only(
    access_lines: io.StringIO,
) -> None:
    paths = ["/livez", "/readyz", "/metrics", "/channels", "/livez/x"]
    for path in paths:
        await _call(_ok, _scope(path=path, raw_path=path.encode()))
    at_info = [json.loads(x) for x in access_lines.getvalue().splitlines()]
    assert [(x["path"], x["level"]) for x in at_info] == [
        ("/channels", "info"),
        ("/livez/x", "info"),
    ]
    logging.getLogger("ticker.access").setLevel(logging.DEBUG)  # the fixture restores it
    access_lines.truncate(0)
    access_lines.seek(0)
    for path in paths[:3]:
        await _call(_ok, _scope(path=path, raw_path=path.encode()))
    at_debug = [json.loads(x) for x in access_lines.getvalue().splitlines()]
    assert [(x["path"], x["level"]) for x in at_debug] == [(p, "debug") for p in paths[:3]]
