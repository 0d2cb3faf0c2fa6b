"""What every HTTP handler shares: the services, the path's item uri, CORS and the
audience of a read, the JSON body and the query parameters, each checked (4xx naming
what is wrong) before anything is read from Redis or written."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ticker.domain.errors import InvalidRequest, NotFound
from ticker.domain.models import URI
from ticker.domain.streamid import valid_entry_id
from ticker.fanout.feed import Feed
from ticker.fanout.hub import Hub
from ticker.http.rules import cors_for, whole_number
from ticker.newsroom.archive import Archive
from ticker.newsroom.auth import Principal, Tokens
from ticker.newsroom.desk import Desk
from ticker.newsroom.retention import Sweeper
from ticker.ops.fleet import Fleet
from ticker.settings import Settings
from ticker.store import Store

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


async def audience(request: Request, svc: Services, headers: dict[str, str]) -> Principal | None:
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


def paging(query: Any) -> tuple[int, str | None]:
    """A page's ``limit`` (1-500, default 50) and ``before`` cursor, or a 422 naming it."""
    limit = whole_number(query.get("limit", "50"), "limit", 1, 500)
    before = query.get("before")
    if before is not None and not valid_entry_id(before):
        message = "must be an id such as 1732640000000-0 (each part below 2**64)"
        raise InvalidRequest(
            f"before: {message}", details=[{"field": "before", "message": message}]
        )
    return limit, before


def flag(request: Request, name: str) -> bool:
    """A true/false query parameter (absent: false), or a 422 naming it."""
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidRequest(
            f"{name}: must be true or false", details=[{"field": name, "message": "true or false"}]
        )
    return raw in ("true", "1")
