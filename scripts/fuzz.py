"""Fuzz a running ``ticker serve`` with hostile input, then check that nothing broke.

    uv run python scripts/fuzz.py --url http://127.0.0.1:8123 \
        --redis-url redis://127.0.0.1:6379/0 --prefix fuzz-run1 --log /tmp/ticker.log

Sends ``--requests`` randomized hostile requests (default 10,000) to the write API, the
read API and the stream endpoint, and writes ``--entries`` random or garbage entries
(default 2,000) straight into the channels' stream keys, as another service might. Then:

* no response was a 5xx;
* no channel stalled: a good item posted at the end reaches an SSE reader on every channel;
* no traceback in the server's log (``--log``, the file its stderr goes to).

Loopback only (it refuses any other host), bounded by count and by ``--time-limit``. It
makes its own editor token (never printed) and revokes it at the end; ``--delete-keys``
then deletes every key under ``--prefix`` (which must start with ``fuzz-``).
Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import string
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
import redis.asyncio as aioredis

from ticker.newsroom.auth import ALL_CHANNELS, Tokens
from ticker.store import Store

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
BIG = str(2**64)
ODD_TEXT = [
    "",
    " ",
    "\u3164",
    "\u2800",
    "\u200d",
    "\ufeff",
    "\u202e",
    "\u2028",
    "\x00",
    "\ud800",
    "\udfff",
    "\U000e0041",
    "\ufe0f",
    "\u0301",
    "\r\n",
    "\n",
    "\t",
    "x" * 300,
    "x" * 5000,
    "é",
    "\U0001f4f0",
    "<script>",
    "' OR 1=1",
    "%00",
    "{{7*7}}",
    "../../etc/passwd",
    "\\",
    '"',
    "null",
]
ODD_NUMBERS = [
    "\u00b2",
    "\u0661",
    "\uff15",
    "9" * 5000,
    "-1",
    "0",
    "+5",
    " 5",
    "5.0",
    "1e3",
    "0x10",
    "",
    "٥",
    "18446744073709551616",
    "99999999999999999999999",
    "NaN",
]
ODD_IDS = [
    f"{BIG}-0",
    f"0-{BIG}",
    f"{2**64 - 1}-{2**64 - 1}",
    "0-0",
    "0-1",
    "1-",
    "-1",
    "abc",
    "1\u00b2-0",
    "\u0661-0",
    "9" * 5000 + "-0",
    "1-2-3",
    "",
    " ",
    "1732640000000-0",
    "1732640000000-0\n",
    "%31-0",
]
ODD_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2026-13-40T25:61:61Z",
    "now",
    "",
    0,
    -1,
    10**30,
    1e308,
    "2026-11-26T18:00:00",
    "2030-01-01T00:00:00+23:59",
    None,
    [],
    {},
]


def pick(rng: random.Random, values: list[Any]) -> Any:
    return rng.choice(values)


def junk_text(rng: random.Random, size: int = 40) -> str:
    alphabet = string.printable + "\u3164\u2800\u200d\u202e\u2028é\U0001f4f0\x00\x85"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(size)))


def item_body(rng: random.Random) -> dict[str, Any]:
    """A body that is valid, or off in one or several fields."""
    body: dict[str, Any] = {"headline": f"fuzz {rng.randrange(10**9)}"}
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        field = pick(
            rng,
            [
                "headline",
                "source",
                "urgency",
                "language",
                "regions",
                "categories",
                "link",
                "status",
                "expires_at",
                "ttl",
                "embargoed_until",
                "extra",
            ],
        )
        if field in ("headline", "source"):
            body[field] = pick(rng, [*ODD_TEXT, junk_text(rng), 5, None, ["x"]])
        elif field == "urgency":
            body[field] = pick(rng, [0, 1, 9, 10, -1, 2**64, 1.5, "5", True, None, *ODD_NUMBERS])
        elif field == "language":
            body[field] = pick(rng, ["en", "en\n", "EN", "x", "es-419", "a" * 40, 5, *ODD_TEXT])
        elif field in ("regions", "categories"):
            body[field] = pick(
                rng,
                [
                    ["europe"],
                    ["europe\n"],
                    ["Europe"],
                    ["a" * 33],
                    ["x"] * 11,
                    "europe",
                    [1],
                    [None],
                    [junk_text(rng)],
                ],
            )
        elif field == "link":
            body[field] = pick(
                rng,
                [
                    "https://example.com/a",
                    "javascript:alert(1)",
                    "https://" + "a" * 3000,
                    "http://",
                    "//x",
                    "https://a b",
                    *ODD_TEXT,
                ],
            )
        elif field == "status":
            body[field] = pick(rng, ["usable", "withheld", "canceled", "USABLE", 1, None])
        elif field in ("expires_at", "embargoed_until"):
            body[field] = pick(rng, ODD_TIMES)
        elif field == "ttl":
            body[field] = pick(
                rng,
                [
                    "30m",
                    "0s",
                    "-5m",
                    "P1D",
                    "PT30M",
                    "9" * 5000,
                    "\u0663h",
                    "99999999999999999999d",
                    "1h30m",
                    60,
                    0,
                    -1,
                    1e300,
                    True,
                    None,
                    *ODD_NUMBERS,
                ],
            )
        else:
            body[f"x{rng.randrange(5)}"] = 1
    return body


def raw_body(rng: random.Random) -> tuple[bytes, str]:
    kind = rng.randrange(10)
    ctype = "application/json"
    if kind == 0:
        return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))), ctype
    if kind == 1:
        return b"[" * rng.randrange(1, 100_000), ctype
    if kind == 2:
        return b'{"headline": "\\ud800"}', ctype
    if kind == 3:
        return json.dumps(item_body(rng)).encode("utf-16"), ctype
    if kind == 4:
        return json.dumps(item_body(rng)).encode(), pick(
            rng,
            [
                "text/plain",
                "",
                "application/json; charset=latin-1",
                "application/jsonx",
                "multipart/form-data; boundary=x",
                "application/json; charset=\u00e9",
            ],
        )
    if kind == 5:
        return b'{"headline": "x" ' + b" " * rng.randrange(1, 20000) + b"}", ctype
    if kind == 6:
        return json.dumps([item_body(rng)]).encode(), ctype
    if kind == 7:
        return b'{"headline": "' + b"x" * rng.randrange(10_000, 40_000) + b'"}', ctype
    if kind == 8:
        return b'{"headline": 1e999999}', ctype
    return json.dumps(item_body(rng), ensure_ascii=rng.random() < 0.5).encode(
        "utf-8", "surrogatepass"
    ), ctype


def odd_uri(rng: random.Random, uris: list[str]) -> str:
    if uris and rng.random() < 0.4:
        return rng.choice(uris)
    return pick(
        rng,
        [
            "x" * 5000,
            "%ff",
            "%00",
            "a%0Ab",
            ".hidden",
            "-x",
            "a%20b",
            "%ED%A0%80",
            "%C3%A9",
            "x" * 65,
            "nosuchitem",
            "a%2Fb",
            "..",
            "%2e%2e",
            "\u00e9",
        ],
    )


def garbage_entry(rng: random.Random, channel: str) -> dict[Any, Any]:
    """One entry as a careless or hostile writer might XADD it."""
    now = time.time()

    def stamp(offset: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + offset))

    good = {
        "uri": f"ext{rng.randrange(10**6)}",
        "channel": channel,
        "version": 1,
        "headline": junk_text(rng) or "x",
        "language": "en",
        "created_at": stamp(0),
        "updated_at": stamp(0),
        "expires_at": stamp(600),
        "author": "other-service",
    }
    kind = rng.randrange(14)
    item: Any
    if kind == 0:
        item = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))
    elif kind == 1:
        item = json.dumps(rng.choice([[1, 2], "s", 5, None, True]))
    elif kind == 2:
        item = "[" * 100_000 + "]" * 100_000
    elif kind == 3:
        item = json.dumps({**good, "headline": "a\ud800b"})
    elif kind == 4:
        item = json.dumps({**good, "created_at": pick(rng, ODD_TIMES)}, default=str)
    elif kind == 5:
        item = json.dumps({**good, "headline": "h" * rng.randrange(70_000, 300_000)})
    elif kind == 6:
        item = json.dumps({k: v for k, v in good.items() if rng.random() < 0.5})
    elif kind == 7:
        item = json.dumps(good).encode()[: rng.randrange(1, 80)] + b"\xff\xfe"
    elif kind == 8:
        return {
            "v": "1",
            "type": "remove",
            "uri": pick(rng, ["", "x" * 5000, "a\r\nb", good["uri"]]),
            "reason": pick(rng, ["kill", "expire", "withhold", "filter", "", "\xff"]),
        }
    elif kind == 9:
        return {bytes([rng.getrandbits(8)]) + b"\xff": bytes(rng.getrandbits(8) for _ in range(20))}
    elif kind == 10:
        return {"v": "2", "type": pick(rng, ["poll", "", "ITEM", "\x00"]), "item": "{}"}
    elif kind == 11:
        item = json.dumps({**good, "regions": [[[]]], "version": -1, "urgency": "high"})
    elif kind == 12:
        item = json.dumps(good)  # a good item from another writer: delivered
    else:
        item = json.dumps({**good, "headline": "\u2028\u0085 line\r\nbreak"})
    return {"v": "1", "type": "item", "uri": good["uri"], "item": item}


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.server_errors: list[str] = []
        self.transport_errors: Counter[str] = Counter()

    def add(self, kind: str, status: int, what: str) -> None:
        self.statuses[(kind, status)] += 1
        if status >= 500:
            self.server_errors.append(f"{status} {what[:160]}")


async def one_request(
    http: httpx.AsyncClient,
    rng: random.Random,
    channels: list[str],
    uris: list[str],
    auth: dict[str, str],
    tally: Tally,
) -> None:
    channel = rng.choice(channels) if rng.random() < 0.95 else pick(rng, ["nope", "EN", "%00"])
    roll = rng.random()
    headers: dict[str, Any] = (
        dict(auth)
        if rng.random() < 0.97
        else pick(
            rng,
            [
                {},
                {"Authorization": "Bearer"},
                {"Authorization": "Basic eDp5"},
                {"Authorization": "Bearer " + "x" * 3000},
            ],
        )
    )
    try:
        if roll < 0.45:  # the write API
            method = pick(rng, ["POST", "POST", "POST", "PATCH", "DELETE"])
            path = f"/channels/{channel}/items"
            if method != "POST":
                path += "/" + odd_uri(rng, uris)
            if rng.random() < 0.3:
                key = pick(rng, ["k1", "a b", "x" * 300, "é", "\u3164", f"k{rng.randrange(50)}"])
                headers["Idempotency-Key"] = key.encode()  # as raw bytes: any UTF-8 goes
            if rng.random() < 0.5:
                content = json.dumps(item_body(rng), default=str).encode("utf-8", "surrogatepass")
                ctype = "application/json"
            else:
                content, ctype = raw_body(rng)
            if ctype:
                headers["Content-Type"] = ctype.encode()
            r = await http.request(method, path, content=content, headers=headers)
            if r.status_code == 201 and method == "POST":
                with contextlib.suppress(Exception):
                    uris.append(r.json()["uri"])
                    del uris[:-200]
            tally.add("write", r.status_code, f"{method} {path[:80]} {content[:60]!r}")
        elif roll < 0.75:  # the read API
            if rng.random() < 0.3:
                path = f"/channels/{channel}/items/{odd_uri(rng, uris)}"
                r = await http.get(path)
            else:
                params: dict[str, str] = {}
                if rng.random() < 0.8:
                    params["history"] = pick(rng, ["true", "1", "false", "TRUE", "yes", "\u0661"])
                if rng.random() < 0.5:
                    params["limit"] = pick(rng, [*ODD_NUMBERS, "1", "2", "500", "501"])
                if rng.random() < 0.5:
                    params["before"] = pick(rng, ODD_IDS)
                path = f"/channels/{channel}/items"
                r = await http.get(path, params=params)
            tally.add("read", r.status_code, f"GET {path[:80]} {r.text[:80]}")
        else:  # the stream endpoint
            params = {}
            stream_headers: dict[str, Any] = {}
            if rng.random() < 0.4:
                params["max_urgency"] = pick(rng, [*ODD_NUMBERS, "1", "9"])
            if rng.random() < 0.3:
                params["region"] = pick(rng, ["europe", "europe\n", "A", "a" * 40, ",,", "é"])
            if rng.random() < 0.5:
                last = pick(rng, ODD_IDS)
                if rng.random() < 0.5 and last.strip() == last and "\n" not in last:
                    # A header cannot carry a line break or edge spaces; other bytes go.
                    stream_headers["Last-Event-ID"] = last.encode()
                else:
                    params["last_event_id"] = last
            path = f"/channels/{channel}/events"
            async with http.stream(
                "GET", path, params=params, headers=stream_headers, timeout=httpx.Timeout(5, read=2)
            ) as r:
                body = b""
                if r.status_code == 200:
                    with contextlib.suppress(httpx.ReadTimeout):
                        async for chunk in r.aiter_bytes():
                            body += chunk
                            if body.endswith(b"\n\n"):
                                break
                    if not body:
                        tally.add(
                            "stream",
                            599,
                            f"GET {path} {params} {stream_headers}: 200 without a body",
                        )
                        return
            tally.add("stream", r.status_code, f"GET {path} {params} {stream_headers}")
    except (httpx.TransportError, UnicodeEncodeError) as exc:
        tally.transport_errors[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1


async def write_garbage(
    client: Any, prefix: str, channels: list[str], rng: random.Random, count: int
) -> int:
    for _ in range(count):
        channel = rng.choice(channels)
        await client.xadd(
            f"{prefix}:{{{channel}}}:events",
            garbage_entry(rng, channel),
            maxlen=5000,
            approximate=False,
        )
        await asyncio.sleep(0)
    return count


async def channel_alive(base: str, channel: str, auth: dict[str, str]) -> bool:
    """A good item posted now reaches an SSE reader of the channel."""
    timeout = httpx.Timeout(10, read=10)
    async with (
        httpx.AsyncClient(base_url=base, timeout=timeout) as http,
        http.stream("GET", f"/channels/{channel}/events") as stream,
    ):
        headline = f"canary {time.time_ns()}"
        reader = stream.aiter_bytes()
        await anext(reader)  # the head: the stream is registered
        r = await http.post(f"/channels/{channel}/items", json={"headline": headline}, headers=auth)
        if r.status_code != 201:
            print(f"  {channel}: canary POST answered {r.status_code}: {r.text[:200]}")
            return False
        seen = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                async for chunk in reader:
                    seen += chunk
                    if headline.encode() in seen:
                        return True
    return False


async def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    rng = random.Random(args.seed)
    store = Store(args.redis_url, prefix=args.prefix)
    tokens = Tokens(store, rate_per_minute=1_000_000, burst=1_000_000)
    name = f"fuzz-{rng.randrange(10**9)}"
    secret = await tokens.create(name, [ALL_CHANNELS])
    auth = {"Authorization": f"Bearer {secret}"}
    raw = aioredis.Redis.from_url(args.redis_url)
    tally = Tally()
    log_start = Path(args.log).stat().st_size if args.log else 0
    try:
        async with httpx.AsyncClient(base_url=args.url, timeout=10) as http:
            channels = [c["name"] for c in (await http.get("/channels")).json()]
            uris: list[str] = []
            garbage_per_batch = max(1, args.entries // max(1, args.requests // 100))
            written = 0
            sem = asyncio.Semaphore(args.concurrency)

            async def guarded(n: int) -> None:
                async with sem:
                    await one_request(http, rng, channels, uris, auth, tally)

            done = 0
            deadline = started + args.time_limit
            while done < args.requests and time.monotonic() < deadline:
                batch = min(100, args.requests - done)
                await asyncio.gather(*(guarded(n) for n in range(batch)))
                done += batch
                if written < args.entries:
                    written += await write_garbage(
                        raw,
                        args.prefix,
                        channels,
                        rng,
                        min(garbage_per_batch, args.entries - written),
                    )
            if written < args.entries and time.monotonic() < deadline:
                written += await write_garbage(
                    raw, args.prefix, channels, rng, args.entries - written
                )
            alive = {ch: await channel_alive(args.url, ch, auth) for ch in channels}
    finally:
        await tokens.revoke(name)
        await store.close()
        await raw.aclose()
    tracebacks = 0
    if args.log:
        with open(args.log, "rb") as f:
            f.seek(log_start)
            tracebacks = f.read().count(b"Traceback")
    elapsed = time.monotonic() - started
    by_kind: dict[str, dict[int, int]] = {}
    for (kind, status), n in sorted(tally.statuses.items()):
        by_kind.setdefault(kind, {})[status] = n
    refused = sum(tally.transport_errors.values())
    print(
        f"requests: {done} in {elapsed:.1f}s (seed {args.seed}), {done - refused} answered;"
        f" entries written: {written}"
    )
    for kind, counts in by_kind.items():
        print(f"  {kind}: {sum(counts.values())} -> {counts}")
    if tally.transport_errors:
        print(f"  not sent or no answer (client-side refusals): {dict(tally.transport_errors)}")
    print(f"5xx: {len(tally.server_errors)}")
    for line in tally.server_errors[:20]:
        print(f"  {line}")
    print(f"channels alive: {sum(alive.values())}/{len(alive)} {alive}")
    print(f"tracebacks in the server log: {tracebacks if args.log else 'not checked (no --log)'}")
    ok = not tally.server_errors and all(alive.values()) and tracebacks == 0
    ok = ok and done == args.requests and written == args.entries
    if args.delete_keys:
        client = redis.Redis.from_url(args.redis_url)
        keys = list(client.scan_iter(match=f"{args.prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()
        print(f"deleted {len(keys)} keys under {args.prefix}:")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the running ticker, on loopback")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True, help="the server's TICKER_KEY_PREFIX")
    parser.add_argument("--log", help="the server's log file, checked for tracebacks")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--time-limit", type=float, default=900, help="seconds")
    parser.add_argument(
        "--delete-keys",
        action="store_true",
        help="delete every key under --prefix afterwards (fuzz-* only)",
    )
    args = parser.parse_args()
    host = urlsplit(args.url).hostname or ""
    redis_host = urlsplit(args.redis_url).hostname or ""
    if host not in LOOPBACK or redis_host not in LOOPBACK:
        parser.error("loopback only: --url and --redis-url must be 127.0.0.1, ::1 or localhost")
    if args.delete_keys and not args.prefix.startswith("fuzz-"):
        parser.error("--delete-keys needs a --prefix that starts with fuzz-")
    if not 0 < args.requests <= 100_000 or not 0 <= args.entries <= 20_000:
        parser.error("at most 100,000 requests and 20,000 entries")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
