"""HTTP handlers: parse and check the request, call the desk or the feed, shape the reply.

Checks run cheapest first and before anything is written: channel and item uri (404),
token (401/403, 429), content type (415), size (413), JSON (400), fields (422). A write
refused after the token's rate counted it is refunded; an Idempotency-Key replay is
answered even over the rate.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ticker.archive import Archive
from ticker.auth import PIN_ROLE, WRITE_ROLE, Principal, Role, Tokens
from ticker.desk import Desk
from ticker.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    StoreUnavailable,
    TickerError,
    Unauthorized,
)
from ticker.fanout.feed import Feed, Recheck, Wanted
from ticker.fanout.hub import Hub
from ticker.fleet import Fleet
from ticker.http.door import SOCKET
from ticker.http.eventstream import stream_response
from ticker.http.preconditions import etag, parse_if_match, precondition
from ticker.http.rules import StreamRequest, cors_for, whole_number
from ticker.models import URI, ApproveIn, ItemIn, ItemPatch, KillIn, PurgeIn, RejectIn, utcnow
from ticker.retention import Sweeper
from ticker.settings import Settings
from ticker.signoff import SIGN_OFF_ROLE
from ticker.store import Store
from ticker.streamid import valid_entry_id

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# A whole number from a query string or header: ASCII digits only (str.isdigit also takes
# "²" and "٣"), and few enough of them that int() is cheap and never refuses.
_DIGITS = re.compile(r"[0-9]{1,20}")


def item_uri(request: Request) -> str:
    """The ``{uri}`` of the path: one that no item can have is simply not found."""
    uri: str = request.path_params["uri"]
    if URI.fullmatch(uri) is None:
        raise NotFound(f"no such item {uri[:64]!r} in channel {request.path_params['channel']!r}")
    return uri


@dataclass(frozen=True, slots=True)
class Services:
    """What the handlers need, built once by the lifespan."""

    settings: Settings
    store: Store
    desk: Desk
    archive: Archive
    tokens: Tokens
    hub: Hub
    feed: Feed
    sweeper: Sweeper
    fleet: Fleet


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def cors_headers(request: Request, settings: Settings) -> dict[str, str]:
    """CORS for the public read-only endpoints; the write API never gets any."""
    return cors_for(request.headers.get("origin"), settings.cors_origins)


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
    if length is not None and _DIGITS.fullmatch(length) is None:
        raise InvalidRequest(
            "Content-Length must be a whole number of bytes", status_code=400, code="bad_length"
        )
    if length is not None and int(length) > limit:
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


async def _writer(
    request: Request, svc: Services, need: Role = WRITE_ROLE
) -> tuple[str, Principal]:
    channel = request.path_params["channel"]
    svc.desk.channel(channel)
    authorization = request.headers.get("authorization")
    principal = await svc.tokens.authorize(authorization, channel, need=need)
    return channel, principal


@asynccontextmanager
async def _refund_rejected(svc: Services, principal: Principal) -> AsyncIterator[None]:
    """A write refused after ``authorize`` counted it (400, 404, 409, 413, 415, 422) wrote
    nothing, so it gives the count back: a typo must not use up an editor's rate."""
    try:
        yield
    except TickerError as exc:
        if 400 <= exc.status_code < 500:
            # The refusal is the answer; a refund that cannot reach Redis must not hide it.
            with contextlib.suppress(StoreUnavailable):
                await svc.tokens.refund(principal)
        raise


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidRequest(
            "Idempotency-Key must be 1-255 printable ASCII characters",
            status_code=400,
            code="bad_idempotency_key",
        )
    return key


async def _replay_over_rate(request: Request, svc: Services, limited: RateLimited) -> Response:
    """A token over its rate still gets the stored reply to an Idempotency-Key it used:
    a replay writes nothing. Anything else keeps the 429 (and costs one more read only
    on this path; the happy path stays one round trip)."""
    channel = request.path_params["channel"]
    try:
        key = _idempotency_key(request)
        if key is None or limited.author is None:
            raise limited
        data = await read_body(request, ItemIn, svc.settings.max_body_bytes)
        item = await svc.desk.replay(channel, data, author=limited.author, idempotency_key=key)
    except InvalidRequest:
        raise limited from None
    if item is None:
        raise limited
    headers = {"Location": f"/channels/{channel}/items/{item.uri}", "Idempotent-Replayed": "true"}
    return _item_response(item, 201, **headers)


def _item_response(item: Any, status_code: int = 200, **headers: str) -> Response:
    # pydantic writes the same compact UTF-8 JSON as JSONResponse, without a dict between.
    headers["ETag"] = etag(item.version)
    return Response(item.model_dump_json(), status_code, headers, media_type="application/json")


def _change_response(item: Any, changed: bool) -> Response:
    """A change's reply: the item, whether this request changed it, and its ETag."""
    body = item.model_dump(mode="json")
    body["changed"] = changed
    return JSONResponse(body, headers={"ETag": etag(item.version)})


def _if_match(request: Request) -> str | None:
    """The ``If-Match`` header (several are one list), checked for its form (400)."""
    values = request.headers.getlist("if-match")
    if not values:
        return None
    joined = ", ".join(values)
    parse_if_match(joined)
    return joined


async def whoami(request: Request) -> Response:
    """The token's name, role and channels (the desk shows them); never the secret."""
    principal = await services(request).tokens.identify(request.headers.get("authorization"))
    body = {"name": principal.name, "role": principal.role, "channels": sorted(principal.channels)}
    headers = {"Cache-Control": "private, no-store", "Vary": "Authorization"}
    return JSONResponse(body, headers=headers)


async def list_channels(request: Request) -> Response:
    svc = services(request)
    body = [
        {
            "name": c.name,
            "language": c.language,
            "timezone": c.timezone,
            "correction_mark_s": c.correction_mark_s,
            "kill_notices": c.kill_notices,
        }
        for c in svc.settings.channels
    ]
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
        limit, before = _page(query)
        page, cursor = await svc.archive.history(
            channel, before=before, limit=limit, desk_view=desk_view
        )
        return JSONResponse(
            {"channel": channel, "items": page, "next_before": cursor}, headers=headers
        )
    _, items = await svc.archive.current(channel)
    items.sort(key=lambda i: i.created_at, reverse=True)
    items.sort(key=lambda i: not i.pinned)  # pinned first (a stable sort keeps the rest)
    rows = [i.model_dump(mode="json") if desk_view else i.public() for i in items]
    if not desk_view:
        return JSONResponse({"channel": channel, "items": rows}, headers=headers)
    if rows:
        reach = await svc.archive.reach(channel, [i.uri for i in items])
        for row in rows:
            row["reach"] = reach.get(row["uri"], 0)
    # Never on air, so never in ``items``: the desk's own list (README, "Advisories").
    advisories = [i.model_dump(mode="json") for i in await svc.archive.advisories(channel)]
    body = {"channel": channel, "items": rows, "advisories": advisories}
    return JSONResponse(body, headers=headers)


async def get_item(request: Request) -> Response:
    svc = services(request)
    channel, uri = request.path_params["channel"], item_uri(request)
    svc.desk.channel(channel)
    headers = cors_headers(request, svc.settings)
    principal = await _audience(request, svc, headers)
    if principal is None:
        item = await svc.archive.get(channel, uri)
        if not item.public_at(utcnow()):
            # Held, embargoed or killed: to the public it does not exist.
            raise NotFound(f"no item {uri!r} in channel {channel!r}")
        return JSONResponse(item.public(), headers=headers)
    item = await svc.archive.get(channel, uri)
    headers["ETag"] = etag(item.version)  # the desk's view only (preconditions.py)
    body = item.model_dump(mode="json")
    body["versions"] = [v.model_dump(mode="json") for v in await svc.archive.versions(channel, uri)]
    body["reach"] = (await svc.archive.reach(channel, [uri])).get(uri, 0)
    if item.story:
        # Linked editions on the channels this token may read, none other.
        readable = [c.name for c in svc.settings.channels if principal.may(c.name)]
        body["editions"] = [
            _edition(e)
            for e in await svc.archive.editions(item.story, readable)
            if (e.channel, e.uri) != (channel, uri)
        ]
    return JSONResponse(body, headers=headers)


def _page(query: Any) -> tuple[int, str | None]:
    """A page's ``limit`` (1-500, default 50) and ``before`` cursor, or a 422 naming it."""
    limit = whole_number(query.get("limit", "50"), "limit", 1, 500)
    before = query.get("before")
    if before is not None and not valid_entry_id(before):
        message = "must be an id such as 1732640000000-0 (each part below 2**64)"
        raise InvalidRequest(
            f"before: {message}", details=[{"field": "before", "message": message}]
        )
    return limit, before


async def audit(request: Request) -> Response:
    """Kills, purges, approvals and rejections, newest first: who, when, uri, a purge's
    reason or a rejection's note, never the item's text. An editor or a chief token reads
    it (a viewer's or a contributor's is refused: reasons can be legal matters)."""
    svc = services(request)
    channel = request.path_params["channel"]
    svc.desk.channel(channel)
    principal = await svc.tokens.reader(request.headers.get("authorization"), channel)
    if principal is None:
        raise Unauthorized("the audit is the desk's: send Authorization: Bearer <token>")
    principal.require("editor")
    limit, before = _page(request.query_params)
    rows, cursor = await svc.archive.audit(channel, before=before, limit=limit)
    headers = {"Cache-Control": "private, no-store", "Vary": "Authorization"}
    return JSONResponse(
        {"channel": channel, "records": rows, "next_before": cursor}, headers=headers
    )


def _edition(item: Any) -> dict[str, Any]:
    """A linked edition, as an item's desk view lists it."""
    keys = ("channel", "uri", "version", "headline", "status", "updated_at", "author")
    row = item.model_dump(mode="json", include=set(keys))
    return {k: row[k] for k in keys}


async def queue(request: Request) -> Response:
    """The desk's queue: held and embargoed items, newest first (a token, any role)."""
    svc = services(request)
    channel = request.path_params["channel"]
    svc.desk.channel(channel)
    headers: dict[str, str] = {}
    if await _audience(request, svc, headers) is None:
        raise Unauthorized("the queue is the desk's: send Authorization: Bearer <token>")
    now = utcnow()
    rows = []
    for item in await svc.archive.queue(channel):
        row = item.model_dump(mode="json")
        # Why it waits (``status`` stays the item's own, as everywhere else).
        row["queue_status"] = item.waiting_for(now)
        rows.append(row)
    return JSONResponse({"channel": channel, "items": rows}, headers=headers)


async def post_item(request: Request) -> Response:
    svc = services(request)
    try:
        channel, principal = await _writer(request, svc)
    except RateLimited as limited:
        return await _replay_over_rate(request, svc, limited)
    async with _refund_rejected(svc, principal):
        key = _idempotency_key(request)
        data = await read_body(request, ItemIn, svc.settings.max_body_bytes)
        if data.pinned:
            principal.require(PIN_ROLE)
        item, created = await svc.desk.post(
            channel, data, author=principal.name, idempotency_key=key, role=principal.role
        )
    headers = {"Location": f"/channels/{channel}/items/{item.uri}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
        await svc.tokens.refund(principal)
    return _item_response(item, 201, **headers)


async def patch_item(request: Request) -> Response:
    svc = services(request)
    uri = item_uri(request)
    channel, principal = await _writer(request, svc)
    async with _refund_rejected(svc, principal):
        if_match = _if_match(request)
        patch = await read_body(request, ItemPatch, svc.settings.max_body_bytes)
        base = precondition(if_match, patch.base_version)
        if patch.pinned is not None:
            principal.require(PIN_ROLE)
        item, changed = await svc.desk.correct(
            channel, uri, patch, author=principal.name, base=base, role=principal.role
        )
    return _change_response(item, changed)


async def delete_item(request: Request) -> Response:
    svc = services(request)
    uri = item_uri(request)
    all_editions = _flag(request, "all_editions")
    channel, principal = await _writer(request, svc)
    async with _refund_rejected(svc, principal):
        base = precondition(_if_match(request), None)
        notice = await _kill_notice(request, svc)
        item, changed = await svc.desk.kill(
            channel, uri, author=principal.name, base=base, notice=notice, role=principal.role
        )
    if not all_editions:
        return _change_response(item, changed)
    return JSONResponse(await _kill_editions(svc, principal, item))


async def _kill_notice(request: Request, svc: Services) -> str | None:
    """A kill's optional body, ``{"notice": "..."}``; no body is a kill without a note."""
    length = request.headers.get("content-length")
    if length in (None, "0") and "transfer-encoding" not in request.headers:
        return None
    data = await read_body(request, KillIn, svc.settings.max_body_bytes)
    if "notice" in data.model_fields_set and data.notice is None:
        message = "may not be null (leave it out for a kill without a notice)"
        raise InvalidRequest(
            f"notice: {message}", details=[{"field": "notice", "message": message}]
        )
    notice: str | None = data.notice
    return notice


async def _kill_editions(svc: Services, principal: Principal, item: Any) -> dict[str, Any]:
    """Kill every edition of the item's story on every channel the token may write: the
    ones killed, and the ones it may not touch (403 each; their text is not shown)."""
    killed, refused = [item.model_dump(mode="json")], []
    if item.story:
        channels = [c.name for c in svc.settings.channels]
        for edition in await svc.archive.editions(item.story, channels):
            if (edition.channel, edition.uri) == (item.channel, item.uri):
                continue
            if not principal.may(edition.channel):
                refused.append(
                    {
                        "channel": edition.channel,
                        "uri": edition.uri,
                        "status": 403,
                        "error": "forbidden",
                        "message": f"token {principal.name!r} may not write to channel "
                        f"{edition.channel!r}",
                    }
                )
                continue
            try:
                done, _ = await svc.desk.kill(
                    edition.channel, edition.uri, author=principal.name, role=principal.role
                )
            except (NotFound, Conflict, Forbidden) as exc:  # purged, busy, not theirs: go on
                refused.append(
                    {
                        "channel": edition.channel,
                        "uri": edition.uri,
                        "status": exc.status_code,
                        "error": exc.code,
                        "message": exc.message,
                    }
                )
                continue
            killed.append(done.model_dump(mode="json"))
    return {"story": item.story, "killed": killed, "refused": refused}


def _flag(request: Request, name: str) -> bool:
    """A true/false query parameter (absent: false), or a 422 naming it."""
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidRequest(
            f"{name}: must be true or false", details=[{"field": name, "message": "true or false"}]
        )
    return raw in ("true", "1")


async def purge_item(request: Request) -> Response:
    svc = services(request)
    channel, principal = await _writer(request, svc)
    principal.require("chief")
    data = await read_body(request, PurgeIn, svc.settings.max_body_bytes)
    uri = request.path_params["uri"]
    _, disk = await svc.desk.purge(channel, uri, reason=data.reason, author=principal.name)
    return JSONResponse({"uri": uri, "purged": True, "disk": disk})


async def approve_item(request: Request) -> Response:
    """An editor's or a chief's sign-off: the item goes on air (or waits for its embargo)."""
    return await _decide(request, "approve")


async def reject_item(request: Request) -> Response:
    """An editor's or a chief's refusal, with a note for the author: never on air."""
    return await _decide(request, "reject")


async def _decide(request: Request, decision: Literal["approve", "reject"]) -> Response:
    svc = services(request)
    uri = item_uri(request)
    # A viewer is told what a sign-off needs; a contributor by signoff.check_decision.
    channel, principal = await _writer(request, svc, need=SIGN_OFF_ROLE)
    async with _refund_rejected(svc, principal):
        if_match = _if_match(request)
        body: ApproveIn
        if decision == "reject":
            body = await read_body(request, RejectIn, svc.settings.max_body_bytes)
        elif request.headers.get("content-length", "0") == "0" and not request.headers.get(
            "transfer-encoding"
        ):
            body = ApproveIn()  # no body: nothing to say but "yes"
        else:
            body = await read_body(request, ApproveIn, svc.settings.max_body_bytes)
        item, changed = await svc.desk.decide(
            channel,
            uri,
            decision,
            by=principal.name,
            role=principal.role,
            note=body.note if isinstance(body, RejectIn) else None,
            base=precondition(if_match, body.base_version),
        )
    return _change_response(item, changed)


def channel_events(request: Request, wanted: StreamRequest) -> Response:
    """``GET /channels/{channel}/events``, judged a stream request (``rules.judge``)."""
    svc = services(request)
    return _stream(
        request,
        Wanted(wanted.channel, wanted.flt, wanted.last_event_id, wanted.counted),
        headers=cors_for(wanted.origin, svc.settings.cors_origins),
    )


def _stream(
    request: Request,
    wanted: Wanted,
    *,
    headers: dict[str, str],
    recheck: Recheck | None = None,
) -> Response:
    """The stream response for ``wanted``, on this request's connection."""
    svc = services(request)
    return stream_response(
        svc.feed,
        svc.hub,
        svc.settings,
        wanted,
        address=request.client.host if request.client else "-",
        headers=headers,
        socket=request.scope.get("extensions", {}).get(SOCKET),
        recheck=recheck,
    )


async def desk_events(request: Request, wanted: StreamRequest) -> Response:
    """``GET /channels/{channel}/events`` with ``Authorization`` (``rules.judge``, rule 7):
    the desk's view of the stream for a token for the channel (any role), never counted
    towards reach. The token is checked before anything is sent (401, 403 as every read),
    and again at each heartbeat: a token revoked or expired meanwhile ends the stream,
    and its reconnection is refused."""
    svc = services(request)
    authorization, channel = request.headers.get("authorization"), wanted.channel
    if await svc.tokens.reader(authorization, channel) is None:  # pragma: no cover
        raise Unauthorized("missing Authorization: Bearer token")  # judge saw the header

    async def still_allowed() -> bool:
        try:
            await svc.tokens.reader(authorization, channel)
        except (Unauthorized, Forbidden):
            return False
        except StoreUnavailable:
            return True  # cannot tell now: the stream's own reads say when Redis is away
        return True

    return _stream(
        request,
        Wanted(channel, wanted.flt, wanted.last_event_id, counted=False, desk=True),
        # The desk's view: never stored by a cache, never read cross-site (no CORS).
        headers={"cache-control": "private, no-store", "vary": "Authorization"},
        recheck=still_allowed,
    )


async def livez(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    svc = services(request)
    if svc.hub.draining:  # stopping: a load balancer sends new readers elsewhere first
        body = {"error": "draining", "message": "this process is shutting down"}
        return JSONResponse(body, status_code=503)
    await svc.store.ping()
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    """Prometheus metrics, for an ``ops`` token only (auth.py): ``404`` without one."""
    await services(request).tokens.operator(request.headers.get("authorization"))
    body, content_type = services(request).hub.metrics.render()
    return Response(body, media_type=content_type)


async def stats(request: Request) -> Response:
    """Per channel: readers across the fleet, items live, history length, its two ends;
    under ``_fleet`` (no channel name has a ``_``), the total and one entry per process;
    under ``_disk``, the AOF and its rewrites (aof.py). For an ``ops`` token only: it
    names hosts and PIDs (``404`` without one)."""
    svc = services(request)
    await svc.tokens.operator(request.headers.get("authorization"))
    members = await svc.fleet.members()
    body: dict[str, Any] = {}
    for ch in svc.settings.channels:
        info = await svc.store.items.stats(ch.name)
        info["readers"] = sum(m.readers.get(ch.name, 0) for m in members)
        body[ch.name] = info
    now = time.time()
    body["_fleet"] = {
        "readers": sum(m.total for m in members),
        "processes": [m.view(now) for m in members],
    }
    body["_disk"] = await svc.sweeper.rewrites.status()
    return JSONResponse(body)
