"""Log lines for people and for log shippers, and an ID for every request.

ticker's modules log with the standard library (``logging.getLogger("ticker.x")``), and so
does uvicorn. ``configure`` puts structlog's ``ProcessorFormatter`` on the root logger, so
every record comes out on stderr as one JSON object per line (``json``) or as
``LEVEL logger: message`` (``console``). ``RequestId`` gives each HTTP request an ID (the
caller's ``X-Request-ID`` when it is sane), binds it with ``structlog.contextvars`` so that
every line logged while the request runs carries it, echoes it in the response and writes
one access line on ``ticker.access`` when the response ends.

Deliberate choices:
- No query string and no header is ever logged: tokens travel in ``Authorization`` and
  can end up in a URL. The access line has the path only.
- Tracebacks are plain text: structlog's rich and dict tracebacks show local variables by
  default, and locals hold secrets.
- Only the ``extra=`` fields named in ``FIELDS`` reach the output; an arbitrary extra
  could be anything, a secret included.
- The set-up is a ``logging.config.dictConfig`` dict of plain strings: uvicorn applies the
  same dict (its ``log_config``) in every worker process it spawns.
"""

from __future__ import annotations

import itertools
import logging
import logging.config
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict, WrappedLogger

Format = Literal["json", "console"]

LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}

# The ``extra=`` fields that reach the output (the access line's, and where a ready
# ``ticker serve`` is: ``announce.py``).
FIELDS = ("method", "path", "status", "duration_ms", "client", "bar", "desk", "token_file")

# A path longer than this is cut: a log line stays a line whatever the client sends.
MAX_PATH = 512

HEADER = b"x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

access_log = logging.getLogger("ticker.access")
# Asked every few seconds by load balancers and Prometheus: their lines are at debug, so
# the info log shows what people and clients do. Whatever the status: a probe failing
# every second during an outage would bury the one line that says why.
QUIET_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


def resolve_format(
    setting: Literal["auto", "json", "console"], stream: TextIO | None = None
) -> Format:
    """``auto``: console on a terminal, JSON otherwise (a container, systemd, a pipe)."""
    if setting == "json":
        return "json"
    if setting == "console":
        return "console"
    stream = stream if stream is not None else sys.stderr
    return "console" if stream is not None and stream.isatty() else "json"


def _level(name: str) -> int:
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r} (debug, info, warning, error)") from None


def dict_config(level: str, fmt: Format) -> dict[str, Any]:
    """The logging set-up as ``dictConfig`` takes it (and uvicorn's ``log_config``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ticker": {"()": "ticker.ops.logs.formatter", "fmt": fmt}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "ticker",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": _level(level), "handlers": ["stderr"]},
    }


def configure(level: str, fmt: Format) -> None:
    """Every logger (ticker's, uvicorn's, any library's) to stderr at ``level``, as ``fmt``."""
    logging.config.dictConfig(dict_config(level, fmt))


def _timestamp(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # When the record was made, not when it was formatted; ISO 8601 in UTC.
    created = event["_record"].created
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    event["timestamp"] = stamp.replace("+00:00", "Z")
    return event


def _fields_first(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    first = {k: event.pop(k) for k in ("timestamp", "level", "logger", "message") if k in event}
    return {**first, **event}


def _console(_: WrappedLogger, __: str, event: EventDict) -> str:
    line = f"{event['level'].upper()} {event['logger']}: {event['event']}"
    if "request_id" in event:
        line += f" request_id={event['request_id']}"
    for key in ("exception", "stack_info"):
        if event.get(key):
            line += "\n" + str(event[key]).rstrip("\n")
    return line


def formatter(fmt: Format) -> logging.Formatter:
    """A formatter for stdlib records: a JSON object per line, or a console line."""
    render: list[Any] = (
        [
            structlog.processors.EventRenamer("message"),
            _fields_first,
            structlog.processors.JSONRenderer(),
        ]
        if fmt == "json"
        else [_console]
    )
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _timestamp,
            structlog.stdlib.ExtraAdder(FIELDS),
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            *render,
        ],
    )


def sanitize_request_id(value: str | bytes | None) -> str | None:
    """The caller's request ID if it is safe to log and echo (1-64 of ``A-Za-z0-9._-``)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if _SANE_ID.fullmatch(value) else None


class _RequestIds:
    """32 hex digits: 16 random per process, then a count. A uuid4 per request read the
    kernel's random source each time, a tenth of what a reader's connect cost."""

    def __init__(self) -> None:
        self._prefix = ""
        self._count = itertools.count()

    def __call__(self) -> str:
        if not self._prefix:
            self._prefix = secrets.token_hex(8)
            # A forked child must never share the prefix (and so the IDs) of its parent.
            os.register_at_fork(after_in_child=self._forget)
        return f"{self._prefix}{next(self._count):016x}"

    def _forget(self) -> None:
        self._prefix = ""
        self._count = itertools.count()


new_request_id = _RequestIds()


class RequestId:
    """Pure ASGI middleware: a request ID (bound for logging, echoed in ``X-Request-ID``)
    and an access line when the response ends (for a stream: when it closes).

    Cheap for streams: it changes only ``http.response.start``; any other message costs
    one type check on its way to the server's ``send`` (no copy, no coroutine), events
    written through the ``ticker.socket`` extension skip it, and the access line is
    written once, at the end. What a stream keeps alive: one frame and one closure.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == HEADER), None)
        request_id = sanitize_request_id(given) or new_request_id()
        header = (HEADER, request_id.encode("ascii"))
        status = 500  # the app failed before it answered: the server sends a 500

        # A plain function that hands back the server's awaitable: no coroutine per send.
        def send_with_id(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            return send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _log_access(scope, status, started)
            structlog.contextvars.reset_contextvars(**tokens)


def _log_access(scope: Scope, status: int, started: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):  # nor, then, at debug
        return
    client = scope.get("client")
    raw = scope.get("raw_path")
    path = log_path(raw) if raw else scope["path"]
    log_access(scope["method"], path, status, started, client[0] if client else "-")


def log_path(raw_path: bytes) -> str:
    """The path only, never the query string (tokens); raw bytes, so no decoded newlines."""
    return raw_path.partition(b"?")[0].decode("ascii", "backslashreplace")


def log_access(method: str, path: str, status: int, started: float, host: str) -> None:
    """The one ``ticker.access`` line of a request (``started``: its ``perf_counter``); at
    debug for health probes and scrapes (``QUIET_PATHS``), at info for the rest."""
    level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    if len(path) > MAX_PATH:
        path = path[:MAX_PATH] + "..."
    access_log.log(
        level,
        "%s %s %d %.1fms %s",
        method,
        path,
        status,
        duration_ms,
        host,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "client": host,
        },
    )


class Every:
    """At most one log line per ``seconds`` for a condition that repeats (Redis down: every
    reader and the sweeper retry twice a second); ``due`` says when to log, and how many
    were held back since."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._next = 0.0
        self._held = 0

    def due(self) -> int | None:
        """The number of lines held back since the last one, or None to hold this one."""
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return None
        self._next = now + self.seconds
        held, self._held = self._held, 0
        return held
