"""The operator's routes: liveness, readiness, Prometheus metrics and ``/stats``."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ticker.http.handling import services


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
