"""What ``ticker serve`` prints once it is ready: where the bar, the desk and the local
token are, so a newcomer's next step is on screen.

Deliberate choices (read before fixing):

* "Ready" is what a load balancer sees: ``/readyz`` answers 200 on loopback. A thread polls
  it (bounded), so one worker or many are announced the same way.
* On stdout, plain, for a person; with JSON logs (a log shipper reads every line), as one
  structured log line instead.
* The token's file, never the token: a terminal's scrollback is not a secret store.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger("ticker.serve")

# A start-up slower than this (a cold embedded Redis loading a large AOF) is announced by
# the logs alone.
READY_WAIT_S = 60.0
POLL_S = 0.1


def local_base(host: str, port: int) -> str:
    """The service's URL as this machine reaches it (a wildcard bind is reached on
    loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def ready_message(base: str, token_file: Path | None) -> str:
    lines = [
        "ticker is ready:",
        f"  the bar   {base}/",
        f"  the desk  {base}/desk",
    ]
    if token_file is not None:
        lines.append(f"  token     {token_file} (the desk's and the CLI's; keep it private)")
    return "\n".join(lines)


def announce_when_ready(
    base: str, token_file: Path | None, stop: threading.Event, *, as_log: bool = False
) -> None:
    """Start a daemon thread that prints ``ready_message`` once ``/readyz`` says 200
    (``as_log``: logs it, with the addresses as fields)."""

    def announce() -> None:
        if not as_log:
            print(ready_message(base, token_file), flush=True)
            return
        log.info(
            "ticker is ready: the bar %s/, the desk %s/desk",
            base,
            base,
            extra={
                "bar": f"{base}/",
                "desk": f"{base}/desk",
                "token_file": str(token_file) if token_file else None,
            },
        )

    def target() -> None:
        deadline = time.monotonic() + READY_WAIT_S
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                # urllib, not httpx: httpx logs every request at info.
                with urllib.request.urlopen(f"{base}/readyz", timeout=1.0) as reply:
                    if reply.status == 200:
                        announce()
                        return
            except (OSError, urllib.error.URLError):
                pass  # not listening (or not ready) yet
            stop.wait(POLL_S)

    threading.Thread(target=target, name="ticker-announce", daemon=True).start()
