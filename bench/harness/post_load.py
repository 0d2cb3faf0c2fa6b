#!/usr/bin/env python3
"""Publish-API throughput: N POSTs over K keep-alive HTTP/1.1 connections, as fast as
the server answers (closed loop: each connection sends its next request when the
previous reply is complete). stdlib + optional uvloop. Loopback targets only; bounded
by --count and --max-time.

Body: --template with {seq} {ts} {run} placeholders (as publish.py). Prints one JSON
line: sent, ok, status counts, elapsed_s, rate_achieved (2xx per second), per-request
latency p50/p90/p99/max in ms, and the client's own CPU seconds.

  post_load.py --url http://127.0.0.1:8000/channels/en/items --count 6000 --conns 16 \
      --header "Authorization: Bearer $TOKEN" \
      --template '{"headline":"Load seq={seq} ts={ts} run={run}"}'
"""

import argparse
import asyncio
import ipaddress
import json
import resource
import socket
import sys
import time
from urllib.parse import urlsplit


def check_loopback(host):
    for *_, sa in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP):
        if not ipaddress.ip_address(sa[0]).is_loopback:
            raise SystemExit(f"refusing non-loopback target {host} -> {sa[0]}")


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        k = k.strip().lower()
        if k == b"content-length":
            length = int(v.strip())
        elif k == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def main_async(a):
    u = urlsplit(a.url)
    check_loopback(u.hostname)
    host, port = u.hostname, u.port or 80
    path = (u.path or "/") + (("?" + u.query) if u.query else "")
    extra = "".join(
        f"{h.split(':', 1)[0].strip()}: {h.split(':', 1)[1].strip()}\r\n" for h in a.header
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: {a.content_type}\r\n"
        f"{extra}Content-Length: "
    ).encode()
    lat = []
    statuses = {}
    errors = {}
    state = {"next": 0}
    deadline = time.monotonic() + a.max_time

    async def conn_loop():
        reader = writer = None
        while True:
            i = state["next"]
            if i >= a.count or time.monotonic() > deadline:
                break
            state["next"] = i + 1
            body = (
                a.template.replace("{seq}", str(a.seq_start + i))
                .replace("{ts}", f"{time.time():.6f}")
                .replace("{run}", a.run)
            ).encode()
            t = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                status = await asyncio.wait_for(read_response(reader), a.timeout)
                statuses[status] = statuses.get(status, 0) + 1
            except Exception as e:
                k = (type(e).__name__ + ": " + str(e))[:100]
                errors[k] = errors.get(k, 0) + 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            lat.append((time.perf_counter() - t) * 1000)
        if writer is not None:
            writer.close()

    t0 = time.time()
    await asyncio.gather(*(conn_loop() for _ in range(a.conns)))
    elapsed = time.time() - t0
    lat.sort()
    q = lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))], 3) if lat else None  # noqa: E731
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "target": "http-concurrent",
        "count": a.count,
        "conns": a.conns,
        "sent": sum(statuses.values()),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "t_start": t0,
        "elapsed_s": round(elapsed, 3),
        "rate_achieved": round(ok / elapsed, 1) if elapsed > 0 else None,
        "send_ms": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0)},
        "client_cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
    }


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--content-type", default="application/json")
    p.add_argument("--template", default='{"headline":"Load seq={seq} ts={ts} run={run}"}')
    p.add_argument("--run", default="r0")
    p.add_argument("--seq-start", type=int, default=1)
    p.add_argument("--timeout", type=float, default=10.0, help="per request (s)")
    p.add_argument("--max-time", type=float, default=60.0, help="hard bound (s)")
    a = p.parse_args()
    try:
        import uvloop

        res = uvloop.run(main_async(a))
    except ImportError:
        res = asyncio.run(main_async(a))
    print(json.dumps(res))
    return 0 if res["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
