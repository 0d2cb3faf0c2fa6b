"""``ticker import``: items from JSON Lines, posted through the HTTP API like ``ticker post``.

A line is one ``POST /channels/{ch}/items`` body, plus an optional ``"channel"``. ``read``
and ``parse`` turn the input into lines, ``run`` posts them; ``importer.py`` shows it
all and says how the run ends (its exit code).

Deliberate choices:
- A line's Idempotency-Key is a SHA-256 of its channel, its canonical JSON and how many
  identical lines came before it; not of its line number. So after an interrupted run, or
  after fixing or deleting a bad line, running the file again replays what is already in
  (the service answers with the first item) instead of posting it twice. The service keeps
  keys per token and channel for TICKER_IDEMPOTENCY_TTL_S (24 h): a run after that, or
  with another token, posts everything again.
- One request at a time by default, in file order: the ticker lists newest first, so the
  last line ends up on top. Concurrency above 1 is faster and keeps no order.
- The client waits out 429s and retries transient failures with the same key. A failure
  it still reports is about one line (4xx: say so, go on) or about the run (401, service
  unreachable, 5xx, still rate-limited: stop, every further line would fail the same way).
- A line whose headline an item posted a moment ago has (the duplicate rule, dupes.py)
  fails like any refused line, with the service's words; the run goes on. ``--force`` (or
  ``"force": true`` on the line) posts it. ``force`` is not part of a line's key, so a run
  with ``--force`` after one without replays what that one imported.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ticker.cli.client import Client, ClientError

# The whole input is read first (to count and key its lines); a backlog is far smaller.
MAX_INPUT_BYTES = 64 * 1024 * 1024


class InputError(Exception):
    """The input cannot be read at all (missing, unreadable, too large)."""


@dataclass(frozen=True, slots=True)
class Line:
    """One item to post."""

    number: int
    channel: str
    body: dict[str, Any]
    key: str


@dataclass(frozen=True, slots=True)
class Bad:
    """A line that is not an item; it fails in its turn, without a request."""

    number: int
    message: str


@dataclass(frozen=True, slots=True)
class Result:
    number: int
    outcome: Literal["imported", "replayed", "failed"]
    message: str = ""  # failed: why, as the service said it
    fatal: bool = False  # failed in a way every further line would too
    # failed: the service's HTTP status (0: no answer); None: refused here, never sent
    status: int | None = None
    item: dict[str, Any] | None = None  # imported or replayed: the item, as the API sent it


@dataclass
class Summary:
    lines: int  # lines to import (blank ones not counted)
    blank: int
    imported: int = 0
    replayed: int = 0  # already imported by an earlier run: nothing new posted
    failed: int = 0
    rate_limited: int = 0  # 429s waited out
    stopped: str = ""  # why the run ended before the last line, if it did
    fatal: Result | None = None  # the failure that stopped the run, if one did
    elapsed_s: float = 0.0

    @property
    def not_attempted(self) -> int:
        return self.lines - self.imported - self.replayed - self.failed

    def add(self, result: Result) -> None:
        if result.outcome == "imported":
            self.imported += 1
        elif result.outcome == "replayed":
            self.replayed += 1
        else:
            self.failed += 1

    def text(self) -> str:
        parts = [f"imported {self.imported}"]
        if self.replayed:
            parts.append(f"already imported {self.replayed}")
        parts.append(f"failed {self.failed}")
        if self.not_attempted:
            parts.append(f"not attempted {self.not_attempted}")
        if self.blank:
            parts.append(f"skipped {plural(self.blank, 'blank line')}")
        if self.rate_limited:
            parts.append(f"rate-limited {plural(self.rate_limited, 'time')}")
        return ", ".join(parts) + f" in {self.elapsed_s:.1f} s"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def read(source: str) -> bytes:
    """The whole input: the file ``source``, or stdin for ``-``."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(source).open("rb") as f:
                data = f.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{source} is larger than {MAX_INPUT_BYTES >> 20} MiB; split it")
    return data


def parse(data: bytes, *, channel: str) -> tuple[list[Line | Bad], int]:
    """The non-blank lines, in file order, each an item or why not; and the blank count."""
    entries: list[Line | Bad] = []
    blank = 0
    seen: Counter[str] = Counter()
    for number, raw in enumerate(data.removeprefix(codecs.BOM_UTF8).splitlines(), start=1):
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            entries.append(Bad(number, f"not UTF-8 text (byte {exc.start + 1})"))
            continue
        if not text:
            blank += 1
            continue
        entries.append(_line(number, text, channel, seen))
    return entries, blank


def _line(number: int, text: str, default_channel: str, seen: Counter[str]) -> Line | Bad:
    try:
        body = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return Bad(number, f"not JSON: {exc.msg} (column {exc.colno})")
    except (ValueError, RecursionError) as exc:
        return Bad(number, f"not JSON: {exc}")
    if not isinstance(body, dict):
        return Bad(number, "not a JSON object")
    channel = body.pop("channel", default_channel)
    if not isinstance(channel, str) or not channel:
        return Bad(number, 'channel: must be a channel name such as "en"')
    canonical = json.dumps([channel, body], sort_keys=True, separators=(",", ":"))
    try:
        canonical.encode("utf-8")
    except UnicodeEncodeError:
        return Bad(number, "contains a lone surrogate escape, which is not text")
    occurrence = seen[canonical]
    seen[canonical] += 1
    digest = hashlib.sha256(f"{occurrence}\n{canonical}".encode()).hexdigest()
    return Line(number, channel, body, f"import-{digest}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _post(client: Client, line: Line, force: bool = False) -> Result:
    body = {**line.body, "force": True} if force else line.body
    try:
        item, created = client.post_item(line.channel, body, idempotency_key=line.key)
    except ClientError as exc:
        fatal = exc.status in (0, 401, 429) or exc.status >= 500
        if not exc.status:
            message = str(exc)
        elif fatal:
            message = f"HTTP {exc.status}: {exc}"
        else:
            message = f"rejected ({exc.status}): {exc}"
        return Result(line.number, "failed", message, fatal=fatal, status=exc.status)
    return Result(line.number, "imported" if created else "replayed", item=item)


def run(
    client: Client,
    entries: Sequence[Line | Bad],
    *,
    blank: int = 0,
    concurrency: int = 1,
    stop_on_error: bool = False,
    force: bool = False,
    on_result: Callable[[Result], None] | None = None,
) -> Summary:
    """Post every line with at most ``concurrency`` requests in flight."""
    summary = Summary(lines=len(entries), blank=blank)
    started, limited = time.monotonic(), client.rate_limited
    pending: set[Future[Result]] = set()

    def settle(result: Result) -> None:
        summary.add(result)
        if on_result is not None:
            on_result(result)
        if result.outcome == "failed" and not summary.stopped:
            if result.fatal:
                summary.stopped = f"at line {result.number}: {result.message}"
                summary.fatal = result
            elif stop_on_error:
                summary.stopped = f"at line {result.number} (--stop-on-error)"

    def settle_some(done: set[Future[Result]]) -> None:
        for result in sorted((f.result() for f in done), key=lambda r: r.number):
            settle(result)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ticker-import")
    try:
        for entry in entries:
            while len(pending) >= concurrency:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                settle_some(done)
            if summary.stopped:
                break
            if isinstance(entry, Bad):
                settle(Result(entry.number, "failed", entry.message))
            else:
                pending.add(pool.submit(_post, client, entry, force))
        settle_some(wait(pending).done)
        pool.shutdown()
    except KeyboardInterrupt:
        # Lines in flight may or may not land; a re-run replays them rather than repeat them.
        pool.shutdown(wait=False, cancel_futures=True)
        summary.stopped = "interrupted"
    summary.rate_limited = client.rate_limited - limited
    summary.elapsed_s = time.monotonic() - started
    return summary
