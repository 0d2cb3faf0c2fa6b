"""HTTP handlers: parse and check the request, call the desk or the feed, shape the reply.

Checks run cheapest first and before anything is written: channel (404), token (401/403),
content type (415), size (413), JSON (400), fields (422).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ticker import feed, protocol
from ticker.auth import Principal, Tokens
from ticker.desk import Desk
from ticker.errors import InvalidRequest, NotFound
from ticker.eventstream import EventStream
from ticker.hub import Hub
from ticker.models import SLUG, ItemIn, ItemPatch, PurgeIn, utcnow
from ticker.retention import Sweeper
from ticker.settings import Settings
from ticker.sse import Filter, retry_frame, valid_entry_id
from ticker.store import Store

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True, slots=True)
class Services:
    """What the handlers need, built once by the lifespan."""

    settings: Settings
    store: Store
    desk: Desk
    tokens: Tokens
    hub: Hub
    sweeper: Sweeper


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    """CORS for the public read-only endpoints; the write API never gets any."""
    origin = request.headers.get("origin")
    if "*" in settings.cors_origins:
        return {"Access-Control-Allow-Origin": "*"}
    if origin and origin in settings.cors_origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


async def _audience(request: Request, svc: Services, headers: dict[str, str]) -> Principal | None:
    """Anonymous (``None``) or the desk (a token for the channel): the two views differ,
    so caches must keep them apart, and the desk's is never stored."""
    principal = await svc.tokens.reader(
        request.headers.get("authorization"), request.path_params["channel"]
    )
    vary = headers.get("Vary")
    headers["Vary"] = f"{vary}, Authorization" if vary else "Authorization"
    if principal is not None:
        headers["Cache-Control"] = "private, no-store"
    return principal


def _field_errors(exc: ValidationError) -> InvalidRequest:
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        details.append({"field": field, "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return InvalidRequest(summary, details=details)


async def read_body(request: Request, model: type[BaseModel], limit: int) -> Any:
    """Read a JSON object within ``limit`` bytes and validate it against ``model``."""
    ctype = request.headers.get("content-type", "")
    media, _, params = ctype.partition(";")
    charset = params.strip().lower().removeprefix("charset=").strip('"')
    if media.strip().lower() != "application/json" or charset not in ("", "utf-8"):
        raise InvalidRequest(
            "Content-Type must be application/json", status_code=415, code="unsupported_media_type"
        )
    too_large = InvalidRequest(
        f"body is larger than {limit} bytes", status_code=413, code="payload_too_large"
    )
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest(
            "body is not valid UTF-8", status_code=400, code="malformed_body"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(
            f"body is not valid JSON ({str(exc)[:80]})", status_code=400, code="malformed_body"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _field_errors(exc) from None


async def _writer(request: Request, svc: Services) -> tuple[str, Principal]:
    channel = request.path_params["channel"]
    svc.desk.channel(channel)
    principal = await svc.tokens.authorize(request.headers.get("authorization"), channel)
    return channel, principal


def _item_response(item: Any, status_code: int = 200, **headers: str) -> Response:
    # pydantic writes the same compact UTF-8 JSON as JSONResponse, without a dict between.
    return Response(item.model_dump_json(), status_code, headers, media_type="application/json")


async def list_channels(request: Request) -> Response:
    svc = services(request)
    body = [{"name": c.name, "language": c.language} for c in svc.settings.channels]
    return JSONResponse(body, headers=cors_headers(request, svc.settings))


async def list_items(request: Request) -> Response:
    svc = services(request)
    channel = request.path_params["channel"]
    query = request.query_params
    history = query.get("history", "false").lower()
    if history not in ("true", "false", "1", "0"):
        raise InvalidRequest(
            "history: must be true or false",
            details=[{"field": "history", "message": "true or false"}],
        )
    svc.desk.channel(channel)
    headers = cors_headers(request, svc.settings)
    desk_view = await _audience(request, svc, headers) is not None
    if history in ("true", "1"):
        limit = query.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 500:
            raise InvalidRequest(
                "limit: must be a whole number from 1 to 500",
                details=[{"field": "limit", "message": "1 to 500"}],
            )
        before = query.get("before")
        if before is not None and not valid_entry_id(before):
            raise InvalidRequest(
                "before: must be an event id such as 1732640000000-0",
                details=[{"field": "before", "message": "an event id"}],
            )
        page, cursor = await svc.desk.history(
            channel, before=before, limit=int(limit), desk_view=desk_view
        )
        return JSONResponse(
            {"channel": channel, "items": page, "next_before": cursor}, headers=headers
        )
    _, items = await svc.desk.current(channel)
    items.sort(key=lambda i: i.created_at, reverse=True)
    rows = [i.model_dump(mode="json") if desk_view else i.public() for i in items]
    return JSONResponse({"channel": channel, "items": rows}, headers=headers)


async def get_item(request: Request) -> Response:
    svc = services(request)
    channel, uri = request.path_params["channel"], request.path_params["uri"]
    svc.desk.channel(channel)
    headers = cors_headers(request, svc.settings)
    if await _audience(request, svc, headers) is None:
        item = await svc.desk.get(channel, uri)
        if not item.public_at(utcnow()):
            # Held, embargoed or killed: to the public it does not exist.
            raise NotFound(f"no item {uri!r} in channel {channel!r}")
        return JSONResponse(item.public(), headers=headers)
    item = await svc.desk.get(channel, uri)
    body = item.model_dump(mode="json")
    body["versions"] = [v.model_dump(mode="json") for v in await svc.desk.versions(channel, uri)]
    return JSONResponse(body, headers=headers)


async def post_item(request: Request) -> Response:
    svc = services(request)
    channel, principal = await _writer(request, svc)
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise InvalidRequest(
            "Idempotency-Key must be 1-255 printable ASCII characters",
            status_code=400,
            code="bad_idempotency_key",
        )
    data = await read_body(request, ItemIn, svc.settings.max_body_bytes)
    item, created = await svc.desk.post(channel, data, author=principal.name, idempotency_key=key)
    headers = {"Location": f"/channels/{channel}/items/{item.uri}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
        await svc.tokens.refund(principal)
    return _item_response(item, 201, **headers)


async def patch_item(request: Request) -> Response:
    svc = services(request)
    channel, principal = await _writer(request, svc)
    patch = await read_body(request, ItemPatch, svc.settings.max_body_bytes)
    item = await svc.desk.correct(channel, request.path_params["uri"], patch, author=principal.name)
    return _item_response(item)


async def delete_item(request: Request) -> Response:
    svc = services(request)
    channel, principal = await _writer(request, svc)
    item = await svc.desk.kill(channel, request.path_params["uri"], author=principal.name)
    return _item_response(item)


async def purge_item(request: Request) -> Response:
    svc = services(request)
    channel, principal = await _writer(request, svc)
    principal.require("chief")
    data = await read_body(request, PurgeIn, svc.settings.max_body_bytes)
    uri = request.path_params["uri"]
    await svc.desk.purge(channel, uri, reason=data.reason, author=principal.name)
    return JSONResponse({"uri": uri, "purged": True})


_FILTERS: dict[Filter, Filter] = {}


def _filter(request: Request) -> Filter:
    def slugs(name: str) -> frozenset[str]:
        values = [v for raw in request.query_params.getlist(name) for v in raw.split(",") if v]
        bad = [v for v in values if len(v) > 32 or not SLUG.match(v)]
        if bad:
            raise InvalidRequest(
                f"{name}: {bad[0][:40]!r} is not a slug",
                details=[{"field": name, "message": "not a slug"}],
            )
        return frozenset(values)

    raw = request.query_params.get("max_urgency", "9")
    if not raw.isdigit() or not 1 <= int(raw) <= 9:
        raise InvalidRequest(
            "max_urgency: must be a whole number from 1 to 9",
            details=[{"field": "max_urgency", "message": "1 to 9"}],
        )
    flt = Filter(slugs("region"), slugs("category"), int(raw))
    # One object per distinct filter: the fan-out's per-filter lookups then hit by
    # identity. Bounded, so odd query strings cannot grow it without end.
    shared = _FILTERS.get(flt)
    if shared is None and len(_FILTERS) < 4096:
        shared = _FILTERS[flt] = flt
    return shared or flt


async def channel_events(request: Request) -> Response:
    svc = services(request)
    channel = request.path_params["channel"]
    svc.desk.channel(channel)
    if request.method != "GET":
        # Starlette adds HEAD to GET routes; a HEAD stream would hold a reader slot with a
        # response that never ends.
        raise InvalidRequest("streams answer GET only", status_code=405, code="method_not_allowed")
    given = request.headers
    if given.get("transfer-encoding") or given.get("content-length", "0") != "0":
        # Nobody reads a stream request's body, and an unread body stops the server from
        # noticing that the client went away.
        raise InvalidRequest("a stream request has no body", status_code=400, code="bad_body")
    flt = _filter(request)
    last_event_id = request.headers.get("last-event-id") or request.query_params.get(
        "last_event_id"
    )
    address = request.client.host if request.client else "-"
    headers = cors_headers(request, svc.settings)
    if not svc.hub.admit(address):
        # Over capacity: 200 (EventSource gives up on anything else), a long retry, done.
        return EventStream(
            _once(retry_frame(svc.settings.over_capacity_retry_ms)),
            send_timeout=svc.settings.send_timeout_s,
            headers=headers,
        )
    gate = feed.Gate()
    socket = request.scope.get("extensions", {}).get(protocol.EXTENSION)
    if socket is not None and not svc.settings.direct_writes:
        socket.direct = False  # every event through ASGI sends; disconnects still told
    stream = feed.events(
        gate=gate,
        socket=socket,
        hub=svc.hub,
        desk=svc.desk,
        store=svc.store,
        settings=svc.settings,
        channel=channel,
        flt=flt,
        last_event_id=last_event_id,
    )
    return EventStream(
        stream,
        send_timeout=svc.settings.send_timeout_s,
        headers=headers,
        on_close=lambda: svc.hub.leave(address),
        on_disconnect=gate.close,
        socket=socket,
    )


async def _once(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk


async def livez(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    await services(request).store.ping()
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    body, content_type = services(request).hub.metrics.render()
    return Response(body, media_type=content_type)


async def stats(request: Request) -> Response:
    """Per channel: readers on this process, items live, history length, its two ends."""
    svc = services(request)
    body = {}
    for ch in svc.settings.channels:
        info = await svc.store.stats(ch.name)
        info["readers"] = svc.hub.subscriber_count(ch.name)
        body[ch.name] = info
    return JSONResponse(body)
