"""``GET /channels/{channel}/events`` on the ASGI path (``app.Streams`` takes it, judged by
``rules.judge``): the public stream, and the desk's for a token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ticker.domain.errors import Forbidden, StoreUnavailable, Unauthorized
from ticker.fanout.feed import Recheck, Wanted
from ticker.http.door import SOCKET
from ticker.http.eventstream import stream_response
from ticker.http.handling import services
from ticker.http.rules import StreamRequest, cors_for


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
