"""The editor's HTTP client, used by the CLI: same validation and auth as every client.

Writes carry an ``Idempotency-Key`` and are retried with the same key when the service
or Redis is briefly away, so a retry never publishes an item twice. A ``429`` is waited out
(``Retry-After``) by every thread sharing the client, since the limit is the token's.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from ticker.server.embedded import read_state
from ticker.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8000"
# Worth another try with the same request: the service, its proxy or Redis is briefly away.
TRANSIENT = frozenset({502, 503, 504})
# A Retry-After beyond this is not believed (a misconfigured proxy must not park us for hours).
MAX_WAIT_S = 120.0
# Nothing listening (connection refused, or no answer to the connect) is retried only this
# long: a service being restarted is back by then, and a service that was never started
# should be reported in seconds, not after the full backoff.
CONNECT_BUDGET_S = 1.5
CONNECT_TIMEOUT_S = 2.0


class ClientError(Exception):
    """The service said no (``status`` >= 400) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, *, status: int = 0, body: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


def resolve(settings: Settings) -> tuple[str, str | None, str]:
    """The service URL, the token and where the token came from (for error messages):
    settings first, then the local embedded service's dev token."""
    state = read_state(settings.state_dir)
    url = settings.url or state.get("url") or DEFAULT_URL
    token = settings.token.get_secret_value() if settings.token else None
    source = "TICKER_TOKEN"
    if token is None and (settings.url is None or settings.url == state.get("url")):
        path: Path = settings.state_dir / "dev-token"
        if path.exists():
            token, source = path.read_text().strip() or None, str(path)
    return url.rstrip("/"), token, source


class Client:
    """Thread-safe: ``ticker import`` shares one between its workers.

    ``retries`` bounds the tries after a transient failure (backing off up to 4 s); a
    connection that cannot be opened is retried for ``connect_budget`` seconds only.
    ``rate_retries`` bounds the waits after a ``429``; ``on_wait(seconds)`` hears of each.
    ``attempts`` counts the requests tried, retries included.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        token_from: str = "TICKER_TOKEN",
        *,
        timeout: float = 10.0,
        retries: int = 5,
        connect_budget: float = CONNECT_BUDGET_S,
        rate_retries: int = 20,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self._token_from = token_from  # named when the token is refused
        self._retries = retries
        self._connect_budget = connect_budget
        self._rate_retries = rate_retries
        self._on_wait = on_wait
        self._http = httpx.Client(
            base_url=url, timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S))
        )
        self._lock = threading.Lock()
        self._resume_at = 0.0  # time.monotonic() before which no request is sent (429)
        self.rate_limited = 0  # 429s waited out so far
        self.attempts = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self, write: bool) -> dict[str, str]:
        if not write:
            # With a token, reads get the desk's view (authors, held items); without,
            # the public one.
            return {"Authorization": f"Bearer {self._token}"} if self._token else {}
        if not self._token:
            # Told before asking, as the service would answer: 401 (exit code 4).
            raise ClientError(
                "no editor token: set TICKER_TOKEN (make one with "
                "`ticker token create NAME --channel CH`)",
                status=401,
            )
        return {"Authorization": f"Bearer {self._token}"}

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The reply's JSON body; a ``ClientError`` for any status >= 400. ``headers``:
        extra request headers (``If-Match``)."""
        reply, _ = self._send(method, path, json=json, params=params, key=None, extra=headers)
        return self._result(reply)

    def post_item(
        self, channel: str, body: dict[str, Any], *, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Post one item: (the item, created). ``False``: an earlier call used the key.

        A replay right after a try that may have landed (a lost reply) counts as created.
        """
        path = f"/channels/{quote(channel, safe='')}/items"
        reply, retried = self._send("POST", path, json=body, params=None, key=idempotency_key)
        item: dict[str, Any] = self._result(reply)
        return item, retried or reply.headers.get("idempotent-replayed") != "true"

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: dict[str, Any] | None,
        key: str | None,
        extra: dict[str, str] | None = None,
    ) -> tuple[httpx.Response, bool]:
        """The last reply, and whether an earlier try may have reached the service."""
        headers = {**self._headers(method != "GET"), **(extra or {})}
        if method == "POST":
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        # A correction has no key: once it may have reached the service, it is not resent.
        repeatable = method != "PATCH"
        delay = 0.25
        attempt = limited = 0
        started = time.monotonic()
        while True:
            self._wait_turn()
            self.attempts += 1
            try:
                reply = self._http.request(method, path, json=json, params=params, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing was sent, so any method may try again, within the connect budget.
                if attempt == self._retries or time.monotonic() - started >= self._connect_budget:
                    raise ClientError(unreachable(self.url, exc)) from None
                wait = min(delay, max(0.0, started + self._connect_budget - time.monotonic()))
            except httpx.TransportError as exc:
                if attempt == self._retries or not repeatable:
                    raise ClientError(unreachable(self.url, exc)) from None
                wait = delay
            else:
                if reply.status_code == 429 and limited < self._rate_retries:
                    # Refused before anything is read or written: safe for every method.
                    limited += 1
                    self._pause(_retry_after(reply) or 1.0)
                    continue
                if reply.status_code not in TRANSIENT or attempt == self._retries or not repeatable:
                    return reply, attempt > 0
                wait = max(delay, _retry_after(reply) or 0.0)
            attempt += 1
            time.sleep(wait)
            delay = min(delay * 2, 4.0)

    def _pause(self, seconds: float) -> None:
        """Hold every request on this client (all threads) for ``seconds``."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)
            self.rate_limited += 1
        if self._on_wait is not None:
            self._on_wait(seconds)

    def _wait_turn(self) -> None:
        with self._lock:
            left = self._resume_at - time.monotonic()
        if left > 0:
            time.sleep(left)

    def _result(self, reply: httpx.Response) -> Any:
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.status_code >= 400:
            body = body if isinstance(body, dict) else {}
            raise ClientError(
                self._refusal(reply.status_code, body),
                status=reply.status_code,
                body=body,
            )
        return body

    def _refusal(self, status: int, body: dict[str, Any]) -> str:
        """The service's words, plus what it cannot know: where our token came from, and
        which channels there are."""
        message = str(body.get("message") or f"HTTP {status}")
        if status == 401:
            lapsed = lapsed_token(body, self._token_from)
            return lapsed or f"{message} (the token in {self._token_from})"
        if status == 403:
            return f"{message} (the token in {self._token_from})"
        if status == 404 and message.startswith("unknown channel"):
            names = self._channels()
            return f"{message}; channels: {', '.join(names)}" if names else message
        return message

    def _channels(self) -> list[str]:
        """The service's channel names, or none if it will not say (best effort)."""
        try:
            reply = self._http.get("/channels")
            return [str(c["name"]) for c in reply.json()] if reply.status_code == 200 else []
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return []

    def events(
        self,
        channel: str,
        *,
        params: dict[str, Any] | None = None,
        last_event_id: str | None = None,
    ) -> Iterator[ServerSentEvent]:
        """Follow a channel's SSE stream (one connection; the caller reconnects)."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with (
            httpx.Client(
                base_url=self.url, timeout=httpx.Timeout(10.0, connect=CONNECT_TIMEOUT_S, read=None)
            ) as http,
            connect_sse(
                http, "GET", f"/channels/{channel}/events", params=params, headers=headers
            ) as source,
        ):
            if source.response.status_code != 200:
                source.response.read()
                self._result(source.response)
            for event in source.iter_sse():
                # httpx-sse yields heartbeat comments after an id as empty events (#35).
                if event.data:
                    yield event


def lapsed_token(body: dict[str, Any], source: str = "TICKER_TOKEN") -> str | None:
    """What an editor reads when the service says their token lapsed (``401``
    ``token_expired`` / ``token_rotated``), and what to do about it; ``None`` otherwise.
    ``source``: where the token came from (a variable's name or a file)."""
    name, at = body.get("token"), body.get("expired_at")
    if body.get("error") == "token_expired":
        return (
            f"the token in {source} ({name!r}) expired at {at}; ask a chief for a new "
            "one: ticker token create NAME --channel CH"
        )
    if body.get("error") == "token_rotated":
        return (
            f"the token in {source} ({name!r}) was rotated at {body.get('rotated_at')}; "
            f"this secret stopped working at {at}. Set TICKER_TOKEN to the new secret "
            "(`ticker token rotate` printed it once), or ask a chief for it"
        )
    return None


def unreachable(url: str, exc: Exception) -> str:
    """The message for a service that cannot be reached, with what to do about it."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return (
            f"no ticker service answers at {url}; start one with `ticker serve` "
            "(or set TICKER_URL to where it runs)"
        )
    return f"lost the connection to ticker at {url} ({exc.__class__.__name__}); try again"


def _retry_after(reply: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (the delay form; ticker never sends a date), bounded."""
    try:
        seconds = float(reply.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_WAIT_S) if math.isfinite(seconds) else None
