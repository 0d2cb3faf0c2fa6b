#!/usr/bin/env python3
"""Summarise a py-spy `--format raw` profile (collapsed stacks: `f1;f2;...;fN COUNT`).

  profile_summary.py PROFILE.txt [--top 25] [--json]

Prints the samples, the functions with the most self time (leaf frames), the most
inclusive time, and ticker-specific buckets (where a delivery's time goes). Buckets
are matched on the innermost frame that matches any bucket, so each sample lands in
exactly one bucket (the most specific one).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import TypedDict

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?):(?P<line>\d+)\)$")

# (bucket, function regex, file regex). Order = priority when several frames match
# the same sample: the innermost matching frame wins, ties go to the first listed.
# File patterns take both layouts: the flat ticker/*.py of older profiles, and the
# packages (ticker/http/, ticker/fanout/, ticker/newsroom/, ...) of today's.
BUCKETS = [
    (
        "events.decode: pydantic Item validation + frame JSON (once per entry)",
        r"^(decode|entry_item|item_event|frame|item_json)$",
        r"ticker/(\w+/)?(sse|events|frames)\.py",
    ),
    (
        "fan-out inner loop: subscriber.deliver, with transport.write and write() inside it"
        " (per reader per batch)",
        r"^deliver$",
        r"ticker/(\w+/)?subscriber\.py",
    ),
    (
        "direct write: Socket.write -> transport.write -> write() (per reader per batch)",
        r"^Socket\.write$",
        r"ticker/(\w+/)?(protocol|socket)\.py",
    ),
    (
        "hub fan-out: offer, writable check, framing (per reader per batch)",
        r"^(ChannelReader\._fan_out|Subscriber\.offer|Subscriber\.go_direct|Batch\.wire|chunk|Socket\.writable)$",
        r"ticker/(\w+/)?(hub|channel|subscriber|protocol|socket)\.py",
    ),
    ("redis-py client: commands, pool, RESP parsing", r".*", r"redis/"),
    (
        "uvicorn send: chunked framing + transport.write",
        r"^RequestResponseCycle\.send$",
        r"uvicorn/protocols/http/",
    ),
    (
        "middleware send wrappers (Starlette ServerError/Exception, SecurityHeaders)",
        r"^(.*send_with_headers|.*_send|.*sender|ServerErrorMiddleware\.__call__\.<locals>\._send)$",
        r"(starlette/|ticker/(http/)?(app|middleware)\.py)",
    ),
    (
        "EventStream._send: asyncio.timeout per send",
        r"^(EventStream\._send|timeout|Timeout\..*)$",
        r"(ticker/(http/)?eventstream\.py|asyncio/timeouts\.py)",
    ),
    (
        "feed.events: join frames, heartbeat, generator resume",
        r"^(events|_live|Feed\.events|Feed\._live|Batch\.frames)$",
        r"ticker/(\w+/)?(feed|hub|subscriber)\.py",
    ),
    (
        "Subscriber.next: waiting for a queued batch or the heartbeat",
        r"^Subscriber\.next$",
        r"ticker/(\w+/)?(hub|subscriber)\.py",
    ),
    (
        "EventStream.__call__ (async-for over the feed)",
        r"^EventStream\.__call__$",
        r"ticker/(http/)?eventstream\.py",
    ),
    ("asyncio event loop / tasks / events", r".*", r"asyncio/"),
    ("uvicorn protocol (request parsing, flow control)", r".*", r"uvicorn/"),
    ("starlette routing / requests / responses", r".*", r"starlette/"),
    ("pydantic", r".*", r"pydantic"),
    ("json", r".*", r"json/"),
    (
        "ticker API: POST handler, auth, desk, store",
        r".*",
        r"ticker/(http/(api|writes|reads|handling)|(newsroom|store)/\w+|(\w+/)?(auth|desk|store|models))\.py",
    ),
    ("ticker other", r".*", r"ticker/"),
]
_BUCKETS = [(n, re.compile(f), re.compile(p)) for n, f, p in BUCKETS]

Frame = tuple[str, str]  # (function, file)
Share = tuple[str, int, float]  # (name, samples, % of all samples)


class Summary(TypedDict):
    samples: int
    buckets: list[Share]
    self: list[Share]
    inclusive: list[Share]


def parse(path: str | Path) -> list[tuple[list[Frame], int]]:
    stacks = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        frames: list[Frame] = []
        for f in stack.split(";"):
            m = _FRAME.match(f)
            frames.append((m.group("fn"), m.group("file")) if m else (f, ""))
        stacks.append((frames, n))
    return stacks


def short(fn: str, file: str) -> str:
    for cut in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if cut in file:
            file = file.split(cut, 1)[1]
    return f"{fn} ({file})"


def bucket_of(frames: list[Frame]) -> str:
    best: tuple[tuple[int, int], str] | None = None
    for depth, (fn, file) in enumerate(frames):
        for prio, (name, fre, pre) in enumerate(_BUCKETS):
            if pre.search(file) and fre.search(fn):
                key = (depth, -prio)
                if best is None or key > best[0]:
                    best = (key, name)
                break
    return best[1] if best else "other (interpreter start-up frames, native)"


def summarize(path: str | Path, top: int = 25) -> Summary:
    stacks = parse(path)
    total = sum(n for _, n in stacks)
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    for frames, n in stacks:
        if not frames:
            continue
        self_t[short(*frames[-1])] += n
        for f in {short(*f) for f in frames}:
            incl[f] += n
        buckets[bucket_of(frames)] += n

    def pct(n: int) -> float:
        return round(100.0 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "buckets": [(k, v, pct(v)) for k, v in buckets.most_common()],
        "self": [(k, v, pct(v)) for k, v in self_t.most_common(top)],
        "inclusive": [(k, v, pct(v)) for k, v in incl.most_common(top * 2)],
    }


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    top = 25
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
        args = [a for a in args if a != str(top)]
    res = summarize(args[0], top)
    if "--json" in sys.argv:
        print(json.dumps(res, indent=1))
        return
    print(f"samples: {res['samples']}")
    for title in ("buckets", "self", "inclusive"):
        print(f"\n== {title}")
        for k, v, p in res[title]:
            print(f"{p:5.1f}% {v:6d}  {k}")


if __name__ == "__main__":
    main()
