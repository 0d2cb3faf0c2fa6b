"""``GET /openapi.json``: the HTTP API as an OpenAPI 3.1 document.

Deliberate choices:
- The paths come from the app's own routes (``document(routes)``), so a route cannot be
  served without being described: a route with no entry in ``OPERATIONS`` fails at
  start-up, not in a client's code generator.
- What each operation may answer is written by hand here, next to nothing else; the
  bodies' schemas are pydantic's (``models_json_schema``), the same models the handlers
  validate with. README "HTTP API" stays the prose.
- The stream route, ``/channels/{channel}/events``, is served by the ``Streams`` door
  ahead of the router (docs/streams.md, "Reading over HTTP"); it is added here by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ticker import __version__
from ticker.domain.models import ApproveIn, Item, ItemIn, ItemPatch, KillIn, PurgeIn, RejectIn

STREAM_PATH = "/channels/{channel}/events"
OPENAPI_PATH = "/openapi.json"


@dataclass(frozen=True, slots=True)
class Operation:
    summary: str
    statuses: tuple[int, ...]
    auth: str = "none"  # "none", "optional" (the desk's view with a token), "required"
    body: str = ""  # a components schema name
    body_required: bool = True  # False: the request may come without a body
    content: str = "application/json"  # of the success answer
    success: str = ""  # a components schema name for the success answer
    notes: tuple[tuple[int, str], ...] = ()  # (status, what it means here), when it needs saying


# Every request may meet these: a head over TICKER_MAX_HEADER_BYTES (431), a Redis that is
# away (503, with Retry-After) where the operation reads or writes it.
_HEAD = (431,)
_READ = (404, 431, 503)
_WRITE = (400, 401, 403, 404, 409, 413, 415, 422, 429, 431, 503)
_FILE = (200, 206, 416, 431)  # Range requests answered by Starlette's FileResponse

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/", "GET"): Operation("The demo page", _FILE, content="text/html"),
    ("/widget.js", "GET"): Operation("The embeddable widget", _FILE, content="text/javascript"),
    ("/desk", "GET"): Operation("The editors' desk (a page)", _FILE, content="text/html"),
    ("/static/{path}", "GET"): Operation(
        "The desk's and the demo's static files",
        (*_FILE, 304, 404),
        content="application/octet-stream",
    ),
    ("/livez", "GET"): Operation("The process is alive", (200, *_HEAD)),
    ("/readyz", "GET"): Operation("Redis answers: ready for traffic", (200, *_HEAD, 503)),
    # For an ops token only: 404 as if absent without one, 403 for another role.
    ("/metrics", "GET"): Operation(
        "Prometheus metrics (an ops token)",
        (200, 403, 404, *_HEAD, 503),
        auth="required",
        content="text/plain",
    ),
    ("/stats", "GET"): Operation(
        "Readers, items and history per channel (an ops token)",
        (200, 403, 404, *_HEAD, 503),
        auth="required",
    ),
    ("/whoami", "GET"): Operation("The token's name, role and channels", (200, 401, *_HEAD, 503)),
    ("/channels", "GET"): Operation(
        "The channels: language, time zone, correction_mark_s and kill_notices", (200, *_HEAD)
    ),
    ("/channels/{channel}/items", "GET"): Operation(
        "Items on the ticker now (with a token, also the advisories), or the history"
        " (?history=true)",
        (200, 401, 422, *_READ),
        auth="optional",
    ),
    ("/channels/{channel}/items", "POST"): Operation(
        "Post an item (Idempotency-Key: a retry returns the first item)",
        (201, *_WRITE),
        auth="required",
        body="ItemIn",
        success="Item",
        notes=(
            (
                409,
                "duplicate: an item with the same headline was posted on the channel within"
                ' its duplicate_window; the reply\'s item is that one, and "force": true posts'
                " anyway (also stale, killed, too_many_pins, conflict: see Error)",
            ),
        ),
    ),
    ("/channels/{channel}/queue", "GET"): Operation(
        "Held and embargoed items (the desk's)", (200, 401, 403, *_READ), auth="required"
    ),
    ("/channels/{channel}/audit", "GET"): Operation(
        "Kills, purges, approvals and rejections, newest first (the desk's)",
        (200, 401, 403, 422, *_READ),
        auth="required",
    ),
    ("/channels/{channel}/items/{uri}", "GET"): Operation(
        "One item (the desk's view, with versions, for a token)",
        (200, 401, *_READ),
        auth="optional",
        success="Item",
    ),
    ("/channels/{channel}/items/{uri}", "PATCH"): Operation(
        "Correct, hold, release, pin or move the embargo (If-Match: a stale change is 409)",
        (200, *_WRITE),
        auth="required",
        body="ItemPatch",
        success="Item",
    ),
    ("/channels/{channel}/items/{uri}", "DELETE"): Operation(
        "Kill an item, with a note for readers if any (?all_editions=true: its editions too)",
        (200, *_WRITE),
        auth="required",
        body="KillIn",
        body_required=False,
    ),
    ("/channels/{channel}/items/{uri}/purge", "POST"): Operation(
        "A legal takedown: every text of the item leaves Redis (a chief's)",
        (200, *_WRITE),
        auth="required",
        body="PurgeIn",
    ),
    ("/channels/{channel}/items/{uri}/approve", "POST"): Operation(
        "Sign off an item that waits: on air now, or at its embargo (an editor's; If-Match)",
        (200, *_WRITE),
        auth="required",
        body="ApproveIn",
        body_required=False,
        success="Item",
    ),
    ("/channels/{channel}/items/{uri}/reject", "POST"): Operation(
        "Reject an item that waits, with a note for its author (an editor's; If-Match)",
        (200, *_WRITE),
        auth="required",
        body="RejectIn",
        success="Item",
    ),
    (STREAM_PATH, "GET"): Operation(
        "Server-sent events: item and remove (docs/streams.md); with a token, the desk's"
        " view (every entry, advisories, authors)",
        (200, 307, 400, 401, 403, 404, 408, 422, 431, 503),  # another method: 405
        auth="optional",
        content="text/event-stream",
    ),
    (OPENAPI_PATH, "GET"): Operation("This document", (200, *_HEAD)),
}


def route_methods(routes: list[BaseRoute]) -> dict[str, set[str]]:
    """Each path template the router serves, with its methods (HEAD goes with GET)."""
    out: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, Mount):
            out.setdefault(route.path + "/{path}", set()).add("GET")
        elif isinstance(route, Route):
            out.setdefault(route.path, set()).update((route.methods or {"GET"}) - {"HEAD"})
    out.setdefault(STREAM_PATH, set()).add("GET")
    return out


def _schemas() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Item, "serialization")]
    models += [(ItemIn, "validation"), (ItemPatch, "validation"), (PurgeIn, "validation")]
    models += [(KillIn, "validation"), (ApproveIn, "validation"), (RejectIn, "validation")]
    _, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = top["$defs"]
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "a stable code, e.g. not_found"},
            "message": {"type": "string"},
            "details": {
                "type": "array",
                "items": {"type": "object"},
                "description": "for 422: which field, and what is wrong with it",
            },
            "item": {
                "$ref": "#/components/schemas/Item",
                "description": "for 409 stale: the item now; for 409 duplicate: the item"
                " posted with the same headline (the desk's view)",
            },
        },
    }
    return schemas


def _operation(path: str, method: str, op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    notes = dict(op.notes)
    for status in op.statuses:
        phrase = HTTPStatus(status).phrase
        answer: dict[str, Any] = {
            "description": f"{phrase}: {notes[status]}" if status in notes else phrase
        }
        if status >= 400:
            error = {"$ref": "#/components/schemas/Error"}
            answer["content"] = {"application/json": {"schema": error}}
        elif status < 300:
            schema: dict[str, Any] = {}
            if op.success:
                schema = {"$ref": f"#/components/schemas/{op.success}"}
            answer["content"] = {op.content: {"schema": schema}}
        responses[str(status)] = answer
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": f"{method.lower()}{path}".replace("/", "_").translate(
            str.maketrans("", "", "{}.")
        ),
        "responses": responses,
    }
    params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
    if params:
        out["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
    if op.body:
        schema = {"$ref": f"#/components/schemas/{op.body}"}
        body = {"schema": schema}
        out["requestBody"] = {"required": op.body_required, "content": {"application/json": body}}
    if op.auth == "required":
        out["security"] = [{"bearer": []}]
    elif op.auth == "optional":
        out["security"] = [{}, {"bearer": []}]
    return out


def document(routes: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these routes; ``KeyError`` names one not described."""
    paths: dict[str, Any] = {}
    for path, methods in sorted(route_methods(routes).items()):
        for method in sorted(methods):
            if (path, method) not in OPERATIONS:
                raise KeyError(f"{method} {path} is served but not in openapi.OPERATIONS")
            op = _operation(path, method, OPERATIONS[(path, method)])
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "ticker", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_route(routes: list[BaseRoute]) -> Route:
    """The route serving ``document`` of ``routes`` plus itself, built once."""

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type="application/json")

    route = Route(OPENAPI_PATH, endpoint, methods=["GET"])
    body = json.dumps(document([*routes, route])).encode()
    return route
