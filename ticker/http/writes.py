"""The write routes: post, correct (hold, release), kill (one edition or all), purge,
approve and reject. Checks run cheapest first and before anything is written: channel
and item uri (404), token (401/403, 429), content type (415), size (413), JSON (400),
fields (422). A write refused after the token's rate counted it is refunded; an
Idempotency-Key replay is answered even over the rate.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ticker.domain.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    StoreUnavailable,
    TickerError,
)
from ticker.domain.models import ApproveIn, ItemIn, ItemPatch, KillIn, PurgeIn, RejectIn
from ticker.http.handling import Services, flag, item_uri, read_body, services
from ticker.http.preconditions import etag, parse_if_match, precondition
from ticker.newsroom.auth import PIN_ROLE, WRITE_ROLE, Principal, Role
from ticker.newsroom.signoff import SIGN_OFF_ROLE

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


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
    all_editions = flag(request, "all_editions")
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
