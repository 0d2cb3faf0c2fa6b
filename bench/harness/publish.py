#!/usr/bin/env python3
"""Publisher: send M messages at R msg/s (or as fast as possible) carrying
{"seq": n, "ts": <epoch float>} through a pluggable target:

  --target http   POST a JSON body (template) to --url            (stdlib only)
  --target redis  XADD to --stream on --redis-url, field --field    (needs redis-py)
  --target ticker XADD in ticker's own stream entry format (docs/streams.md): fields
                  v=1, type=item, uri, item=<item JSON without id>, on --stream
                  (e.g. bench:{en}:events), MAXLEN --maxlen exact, like ticker's commit
                  script; the headline is --template (use {seq} {ts} {run} markers)

Copied from shared/bench/publish.py (sha256 44d0683e...); changes: the `ticker` target
and item_json() below. Everything else is unchanged.

The schedule is absolute (t0 + i/R), so a slow send does not shift later ones.
Prints one JSON line: sent, errors, elapsed_s, rate_achieved, per-send latency.
Loopback targets only; bounded by --count and --max-time.
"""
import argparse
import ipaddress
import json
import socket
import sys
import time
from urllib.parse import urlsplit

DEFAULT_TEMPLATE = ('{"type":"headline","seq":{seq},"ts":{ts},"run":"{run}",'
                    '"headline":"Breaking: sample headline number {seq} for the ticker load test",'
                    '"url":"https://news.example/item/{seq}"}')


def check_loopback(host):
    for *_, sa in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP):
        if not ipaddress.ip_address(sa[0]).is_loopback:
            raise SystemExit(f"refusing non-loopback target {host} -> {sa[0]}")


def render(tpl, seq, run):
    ts = f"{time.time():.6f}"
    return tpl.replace("{seq}", str(seq)).replace("{ts}", ts).replace("{run}", run)


class HttpTarget:
    def __init__(self, a):
        import http.client
        u = urlsplit(a.url)
        check_loopback(u.hostname)
        self.hc = http.client
        self.host, self.port = u.hostname, u.port or 80
        self.path = (u.path or "/") + (("?" + u.query) if u.query else "")
        self.ctype = a.content_type
        self.extra = dict(h.split(":", 1) for h in a.header)
        self.extra = {k.strip(): v.strip() for k, v in self.extra.items()}
        self.conn = None

    def send(self, body):
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = self.hc.HTTPConnection(self.host, self.port, timeout=10)
                self.conn.request("POST", self.path, body=body.encode(),
                                  headers={"Content-Type": self.ctype, **self.extra})
                r = self.conn.getresponse()
                r.read()
                if r.status >= 300:
                    raise RuntimeError(f"HTTP {r.status}")
                return
            except (OSError, self.hc.HTTPException):
                self.conn = None
                if attempt == 2:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()


class RedisTarget:
    def __init__(self, a):
        import redis
        u = urlsplit(a.redis_url)
        check_loopback(u.hostname)
        self.r = redis.Redis.from_url(a.redis_url)
        self.stream, self.field, self.maxlen = a.stream, a.field, a.maxlen
        self.r.ping()

    def send(self, body):
        self.r.xadd(self.stream, {self.field: body},
                    maxlen=self.maxlen or None, approximate=True)

    def close(self):
        self.r.close()


def item_json(headline, uri, channel="en", author="bench", ttl_s=6 * 3600):
    """An item as ticker stores it in a stream entry (no `id`: the entry ID is the id)."""
    now = time.time()
    fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"  # noqa: E731
    return json.dumps({
        "uri": uri, "channel": channel, "version": 1, "headline": headline, "source": None,
        "urgency": 5, "language": "en", "regions": [], "categories": [], "link": None,
        "status": "usable", "created_at": fmt(now), "updated_at": fmt(now),
        "expires_at": fmt(now + ttl_s), "embargoed_until": None, "author": author,
    }, ensure_ascii=False, separators=(",", ":"))


class TickerTarget(RedisTarget):
    """XADD one `item` entry per message, in ticker's schema (v=1)."""

    def __init__(self, a):
        super().__init__(a)
        self.n = 0
        self.prefix = "b" + a.run[:20]

    def send(self, body):
        self.n += 1
        uri = f"{self.prefix}-{self.n}"
        self.r.xadd(self.stream, {"v": "1", "type": "item", "uri": uri,
                                  "item": item_json(body, uri)},
                    maxlen=self.maxlen or None, approximate=False)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["http", "redis", "ticker"], default="http")
    p.add_argument("--url", help="http target: POST URL")
    p.add_argument("--content-type", default="application/json")
    p.add_argument("--header", action="append", default=[],
                   help="http target: extra request header 'K: V' (e.g. 'Authorization: Bearer T')")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6390/0")
    p.add_argument("--stream", default="ticker")
    p.add_argument("--field", default="data")
    p.add_argument("--maxlen", type=int, default=10000, help="XADD MAXLEN ~ (0 = unbounded)")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--rate", type=float, default=0.0, help="messages/s (0 = as fast as possible)")
    p.add_argument("--seq-start", type=int, default=1)
    p.add_argument("--run", default="r0", help="run id placed in the payload")
    p.add_argument("--template", default=DEFAULT_TEMPLATE,
                   help="body with {seq}, {ts}, {run} placeholders")
    p.add_argument("--max-time", type=float, default=300.0, help="hard bound (s)")
    a = p.parse_args()
    tgt = {"http": HttpTarget, "redis": RedisTarget, "ticker": TickerTarget}[a.target](a)
    lat = []
    errors = 0
    err_kinds = {}
    t0 = time.time()
    deadline = time.monotonic() + a.max_time
    sent = 0
    for i in range(a.count):
        if time.monotonic() > deadline:
            break
        if a.rate > 0:
            wait = t0 + i / a.rate - time.time()
            if wait > 0:
                time.sleep(wait)
        body = render(a.template, a.seq_start + i, a.run)
        s = time.perf_counter()
        try:
            tgt.send(body)
            sent += 1
        except Exception as e:  # noqa: BLE001
            errors += 1
            k = type(e).__name__ + ": " + str(e)[:80]
            err_kinds[k] = err_kinds.get(k, 0) + 1
        lat.append((time.perf_counter() - s) * 1000)
    elapsed = time.time() - t0
    tgt.close()
    lat.sort()
    q = lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))], 3) if lat else None  # noqa: E731
    print(json.dumps({"target": a.target, "count": a.count, "sent": sent, "errors": errors,
                      "error_kinds": err_kinds, "rate_requested": a.rate,
                      "t_start": t0, "elapsed_s": round(elapsed, 3),
                      "rate_achieved": round(sent / elapsed, 1) if elapsed > 0 else None,
                      "send_ms": {"p50": q(0.5), "p99": q(0.99), "max": q(1.0) if lat else None}}))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
