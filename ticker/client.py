"""The editor's HTTP client, used by the CLI: same validation and auth as every client.

Writes carry an ``Idempotency-Key`` and are retried with the same key when the service
or Redis is briefly away, so a retry never publishes an item twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from ticker.embedded import read_state
from ticker.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8000"


class ClientError(Exception):
    """The service said no (``status`` >= 400) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, *, status: int = 0, body: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


def resolve(settings: Settings) -> tuple[str, str | None]:
    """The service URL and token: settings first, then the local embedded service."""
    state = read_state(settings.state_dir)
    url = settings.url or state.get("url") or DEFAULT_URL
    token = settings.token.get_secret_value() if settings.token else None
    if token is None and (settings.url is None or settings.url == state.get("url")):
        path: Path = settings.state_dir / "dev-token"
        if path.exists():
            token = path.read_text().strip() or None
    return url.rstrip("/"), token


class Client:
    def __init__(
        self, url: str, token: str | None, *, timeout: float = 10.0, retries: int = 5
    ) -> None:
        self.url = url
        self._token = token
        self._retries = retries
        self._http = httpx.Client(base_url=url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self, write: bool) -> dict[str, str]:
        if not write:
            return {}
        if not self._token:
            raise ClientError(
                "no editor token: set TICKER_TOKEN (make one with "
                "`ticker token create NAME --channel CH`)"
            )
        return {"Authorization": f"Bearer {self._token}"}

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        write = method != "GET"
        headers = self._headers(write)
        if method == "POST":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        delay = 0.25
        for attempt in range(self._retries + 1):
            try:
                reply = self._http.request(method, path, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:
                if attempt == self._retries or method == "PATCH":
                    raise ClientError(
                        f"cannot reach ticker at {self.url} ({exc.__class__.__name__}"
                        "); is `ticker serve` running?"
                    ) from None
            else:
                # 503: Redis is away for a moment. POST and DELETE are safe to repeat.
                if reply.status_code != 503 or attempt == self._retries or method == "PATCH":
                    return self._result(reply)
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _result(reply: httpx.Response) -> Any:
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.status_code >= 400:
            message = body.get("message") if isinstance(body, dict) else None
            raise ClientError(
                message or f"HTTP {reply.status_code}",
                status=reply.status_code,
                body=body if isinstance(body, dict) else {},
            )
        return body

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
            httpx.Client(base_url=self.url, timeout=httpx.Timeout(10.0, read=None)) as http,
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
