"""``GET /openapi.json``: an OpenAPI 3.1 document that lists every route the app serves,
with its methods, and every status a real request to it gets. Real Redis, a real uvicorn."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Mount, Route

from tests.helpers import make_token, ops_headers
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def spec(server: tuple[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        r = await http.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    return dict(r.json())


def served(server: tuple[str, Any]) -> set[tuple[str, str]]:
    """(path template, method) for every route of the app, read from its router."""
    out = {("/channels/{channel}/events", "GET")}  # the Streams door, ahead of the router
    for route in server[1].app.routes:
        if isinstance(route, Mount):
            out.add((route.path + "/{path}", "GET"))
        elif isinstance(route, Route):
            out.update((route.path, m) for m in route.methods or () if m != "HEAD")
    return out


async def test_the_document_lists_every_route_with_its_methods(
    server: tuple[str, Any], spec: dict[str, Any]
) -> None:
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["title"] and spec["info"]["version"]
    listed = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    assert listed == served(server)
    assert len(listed) >= 19
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)
            for status in op["responses"]:
                assert 200 <= int(status) < 600
            names = {p["name"] for p in op.get("parameters", ())}
            assert names == {s.strip("{}") for s in path.split("/") if s.startswith("{")}


async def test_every_schema_and_reference_in_the_document_is_sound(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    refs = [r for r in _refs(spec)]
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    # A kill's note is an optional body; a correction's notice and the item's fields are named.
    kill = spec["paths"]["/channels/{channel}/items/{uri}"]["delete"]["requestBody"]
    assert kill["required"] is False
    assert kill["content"]["application/json"]["schema"]["$ref"].endswith("/KillIn")
    assert set(schemas["KillIn"]["properties"]) == {"notice"}
    assert "notice" in schemas["ItemPatch"]["properties"]
    assert {"corrected_at", "notice"} <= set(schemas["Item"]["properties"])


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return out + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_every_status_a_real_request_gets_is_listed(
    server: tuple[str, Any], spec: dict[str, Any], token: str, settings: Settings
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    viewer = make_token(settings, "viewer", ["en"], role="viewer")
    contributor = make_token(settings, "contributor", ["en"], role="contributor")
    seen: set[tuple[str, str, int]] = set()
    ed = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:

        async def call(template: str, method: str, url: str = "", **kw: Any) -> httpx.Response:
            r = await http.request(method, url or template, **kw)
            seen.add((template, method, r.status_code))
            return r

        for page in ("/", "/widget.js", "/desk", "/livez", "/readyz"):
            r = await call(page, "GET")
        ops = ops_headers(settings)
        for page in ("/metrics", "/stats"):  # an ops token; none (404); another role (403)
            for headers in (ops, {}, ed):
                await call(page, "GET", headers=headers)
        r = await call("/static/{path}", "GET", "/static/desk.js")
        tag = {"If-None-Match": r.headers["etag"]}
        await call("/static/{path}", "GET", "/static/desk.js", headers=tag)
        await call("/", "GET", headers={"Range": "bytes=0-1"})
        await call("/", "GET", headers={"Range": "bytes=99999999-"})
        await call("/static/{path}", "GET", "/static/nope.js")
        await call("/livez", "GET", headers={"X-Big": "x" * (settings.max_header_bytes + 10)})
        await call("/whoami", "GET")
        await call("/whoami", "GET", headers=ed)
        await call("/channels", "GET")
        await call("/openapi.json", "GET")

        items = "/channels/{channel}/items"
        await call(items, "GET", "/channels/en/items")
        await call(items, "GET", "/channels/en/items?history=true", headers=ed)
        await call(items, "GET", "/channels/en/items?history=maybe")
        await call(items, "GET", "/channels/nope/items")
        r = await call(items, "POST", "/channels/en/items", json={"headline": "A"}, headers=ed)
        uri = r.json()["uri"]
        for kw in (
            {"json": {"headline": "A"}},  # no token
            {"json": {"headline": "A"}, "headers": {"Authorization": f"Bearer {viewer}"}},
            {"content": b"{", "headers": {**ed, "Content-Type": "application/json"}},
            {"content": b"x", "headers": {**ed, "Content-Type": "text/plain"}},
            {"json": {"headline": "A" * settings.max_body_bytes}, "headers": ed},
            {"json": {"headline": ""}, "headers": ed},
            {"json": {"headline": "A"}, "headers": {**ed, "Idempotency-Key": "a b"}},
        ):
            await call(items, "POST", "/channels/en/items", **kw)

        for desk in ("/channels/{channel}/queue", "/channels/{channel}/audit"):
            await call(desk, "GET", desk.replace("{channel}", "en"), headers=ed)
            await call(desk, "GET", desk.replace("{channel}", "en"))
            await call(desk, "GET", desk.replace("{channel}", "nope"), headers=ed)
        await call("/channels/{channel}/audit", "GET", "/channels/en/audit?limit=x", headers=ed)

        one = "/channels/{channel}/items/{uri}"
        await call(one, "GET", f"/channels/en/items/{uri}")
        await call(one, "GET", f"/channels/en/items/{uri}", headers=ed)
        await call(one, "GET", "/channels/en/items/unknown")
        await call(one, "GET", f"/channels/en/items/{uri}", headers={"Authorization": "Bearer x"})
        path = f"/channels/en/items/{uri}"
        await call(one, "PATCH", path, json={"headline": "B"}, headers=ed)
        await call(one, "PATCH", path, json={"headline": "C"}, headers={**ed, "If-Match": '"v1"'})
        await call(one, "PATCH", path, json={"headline": "C"}, headers={**ed, "If-Match": "v"})
        await call(one, "PATCH", path, json={"nope": 1}, headers=ed)
        await call(one + "/purge", "POST", path + "/purge", json={"reason": "x"}, headers=ed)
        await call(one, "DELETE", path, json={"notice": "A\nB"}, headers=ed)
        await call(one, "DELETE", path, json={"notice": "Withdrawn"}, headers=ed)
        await call(one, "PATCH", path, json={"headline": "D"}, headers=ed)  # killed: 409
        await call(one, "DELETE", "/channels/en/items/unknown", headers=ed)
        chief_auth = {"Authorization": f"Bearer {chief}"}
        await call(
            one + "/purge", "POST", path + "/purge", json={"reason": "x"}, headers=chief_auth
        )

        # Sign-off: a contributor's post waits; an editor approves or rejects it.
        stringer = {"Authorization": f"Bearer {contributor}"}
        r = await call(
            items, "POST", "/channels/en/items", json={"headline": "T"}, headers=stringer
        )
        waiting = f"/channels/en/items/{r.json()['uri']}"
        approve, reject = one + "/approve", one + "/reject"
        await call(approve, "POST", waiting + "/approve", headers=stringer)  # 403
        await call(approve, "POST", waiting + "/approve")  # 401
        await call(approve, "POST", waiting + "/approve", headers={**ed, "If-Match": "v1"})
        await call(approve, "POST", "/channels/en/items/unknown/approve", headers=ed)
        await call(reject, "POST", waiting + "/reject", json={}, headers=ed)  # 422
        await call(reject, "POST", waiting + "/reject", content=b"x", headers=ed)  # 415
        await call(approve, "POST", waiting + "/approve", json={}, headers=ed)  # 200
        await call(reject, "POST", waiting + "/reject", json={"note": "n"}, headers=ed)  # 409

        events = "/channels/{channel}/events"
        await call(events, "GET", "/channels/en/events?max_urgency=x")
        await call(events, "GET", "/channels/nope/events")
        await call(events, "POST", "/channels/en/events")
        await call(events, "GET", "/channels/en/events/", follow_redirects=False)
        await call(events, "GET", "/channels/en/events", content=b"x")
        async with http.stream("GET", "/channels/en/events") as r:
            seen.add((events, "GET", r.status_code))
        async with http.stream("GET", "/channels/en/events", headers=ed) as r:  # the desk's
            seen.add((events, "GET", r.status_code))
        await call(events, "GET", "/channels/en/events", headers={"Authorization": "Bearer x"})
        ops_only = ops_headers(settings)
        await call(events, "GET", "/channels/en/events", headers=ops_only)
        # PATCH naming kind, and a post of an advisory that asks for a pin: 422 each.
        r = await call(one, "PATCH", path, json={"kind": "headline"}, headers=chief_auth)
        assert r.status_code == 422
        bad = {"headline": "A", "kind": "advisory", "pinned": True}
        r = await call(items, "POST", "/channels/en/items", json=bad, headers=chief_auth)
        assert r.status_code == 422

    def documented(template: str, method: str, status: int) -> bool:
        ops = spec["paths"].get(template, {})
        if method.lower() not in ops:
            return status == 405  # a method the document does not list is refused
        return str(status) in ops[method.lower()]["responses"]

    assert sorted(x for x in seen if not documented(*x)) == []
    # The table above reached what it meant to: each listed family of answers.
    statuses = {s for _, _, s in seen}
    assert {
        200,
        201,
        206,
        304,
        307,
        400,
        401,
        403,
        404,
        405,
        409,
        413,
        415,
        416,
        422,
        431,
    } <= statuses


async def test_a_duplicate_post_is_the_documented_409_with_the_other_item(
    server: tuple[str, Any], spec: dict[str, Any], token: str
) -> None:
    post = spec["paths"]["/channels/{channel}/items"]["post"]
    assert "duplicate" in post["responses"]["409"]["description"]
    force = spec["components"]["schemas"]["ItemIn"]["properties"]["force"]
    assert force["type"] == "boolean" and force["default"] is False
    ed = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], headers=ed, timeout=10) as http:
        first = await http.post("/channels/en/items", json={"headline": "Port closed"})
        again = await http.post("/channels/en/items", json={"headline": "PORT CLOSED."})
    assert again.status_code == 409 and again.json()["error"] == "duplicate"
    # The reply is the documented Error, its item the documented Item (the schemas' refs
    # resolve in the document itself).
    error = post["responses"]["409"]["content"]["application/json"]["schema"]
    Draft202012Validator({**error, "components": spec["components"]}).validate(again.json())
    assert again.json()["item"] == first.json()
