#!/usr/bin/env python3
"""What the per-delivery asyncio building blocks cost on this machine (uvloop if installed):
`async with asyncio.timeout()`, a bare call_at + cancel, an asyncio.Event set -> waiting
task resumes round trip, a bare future round trip, and four nested `async def` send
wrappers (Starlette-style middleware). Prints one JSON line (microseconds per operation).

  python3 asyncio_costs.py [--n 50000] [--loop uvloop|asyncio]
"""

import argparse
import asyncio
import json
import time


async def measure(n):
    loop = asyncio.get_running_loop()
    out = {"loop": type(loop).__module__, "n": n}

    t = time.perf_counter()
    for _ in range(n):
        async with asyncio.timeout(30):
            pass
    out["asyncio_timeout_us"] = (time.perf_counter() - t) / n * 1e6

    t = time.perf_counter()
    for _ in range(n):
        h = loop.call_at(loop.time() + 30, int)
        h.cancel()
    out["call_at_cancel_us"] = (time.perf_counter() - t) / n * 1e6

    ev = asyncio.Event()

    async def waiter():
        for _ in range(n):
            ev.clear()
            await ev.wait()

    w = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    t = time.perf_counter()
    for _ in range(n):
        ev.set()
        await asyncio.sleep(0)
    out["event_wake_roundtrip_us"] = (time.perf_counter() - t) / n * 1e6
    await w

    box = {}

    async def fwaiter():
        for _ in range(n):
            box["f"] = loop.create_future()
            await box["f"]

    w = asyncio.create_task(fwaiter())
    await asyncio.sleep(0)
    t = time.perf_counter()
    for _ in range(n):
        box["f"].set_result(None)
        await asyncio.sleep(0)
    out["future_wake_roundtrip_us"] = (time.perf_counter() - t) / n * 1e6
    await w

    async def leaf(m):
        pass

    async def w1(m):
        await leaf(m)

    async def w2(m):
        await w1(m)

    async def w3(m):
        await w2(m)

    async def w4(m):
        await w3(m)

    t = time.perf_counter()
    for _ in range(n):
        await w4({"type": "http.response.body", "body": b"x", "more_body": True})
    out["four_async_wrappers_us"] = (time.perf_counter() - t) / n * 1e6
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=50000)
    p.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    a = p.parse_args()
    if a.loop == "uvloop":
        try:
            import uvloop

            print(json.dumps(uvloop.run(measure(a.n))))
            return
        except ImportError:
            pass
    print(json.dumps(asyncio.run(measure(a.n))))


if __name__ == "__main__":
    main()
