"""The read routes: channels, items (current, history, one item with its versions), the
desk's queue and audit, and ``/whoami``. The public and the desk's views differ
(``handling.audience``); the desk's is never stored by a cache."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ticker.domain.errors import InvalidRequest, NotFound, Unauthorized
from ticker.domain.models import utcnow
from ticker.http.handling import audience, cors_headers, item_uri, paging, services
from ticker.http.preconditions import etag


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
    desk_view = await audience(request, svc, headers) is not None
    if history in ("true", "1"):
        limit, before = paging(query)
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
    principal = await audience(request, svc, headers)
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


def _edition(item: Any) -> dict[str, Any]:
    """A linked edition, as an item's desk view lists it."""
    keys = ("channel", "uri", "version", "headline", "status", "updated_at", "author")
    row = item.model_dump(mode="json", include=set(keys))
    return {k: row[k] for k in keys}


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
    limit, before = paging(request.query_params)
    rows, cursor = await svc.archive.audit(channel, before=before, limit=limit)
    headers = {"Cache-Control": "private, no-store", "Vary": "Authorization"}
    return JSONResponse(
        {"channel": channel, "records": rows, "next_before": cursor}, headers=headers
    )


async def queue(request: Request) -> Response:
    """The desk's queue: held and embargoed items, newest first (a token, any role)."""
    svc = services(request)
    channel = request.path_params["channel"]
    svc.desk.channel(channel)
    headers: dict[str, str] = {}
    if await audience(request, svc, headers) is None:
        raise Unauthorized("the queue is the desk's: send Authorization: Bearer <token>")
    now = utcnow()
    rows = []
    for item in await svc.archive.queue(channel):
        row = item.model_dump(mode="json")
        # Why it waits (``status`` stays the item's own, as everywhere else).
        row["queue_status"] = item.waiting_for(now)
        rows.append(row)
    return JSONResponse({"channel": channel, "items": rows}, headers=headers)
