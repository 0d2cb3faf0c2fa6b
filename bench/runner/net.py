"""Loopback probes: free ports, a server that answers, connections still open, and the
kernel's listen-queue counters."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_port(preferred: int) -> int:
    for p in range(preferred, preferred + 50):
        if port_free(p):
            return p
    raise SystemExit(f"no free port near {preferred}")


def wait_http(url: str, timeout: float = 30.0, ok: tuple[int, ...] = (200,)) -> bool:
    """True once `url` answers with a status in `ok`; False after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status in ok:
                    return True
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


def redis_ping(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def conns_on_port(port: int) -> int:
    """Server-side TCP connections on `port` (any state but LISTEN and TIME_WAIT)."""
    n = 0
    hexport = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(hexport) and parts[3] not in ("0A", "06"):
                        n += 1
        except OSError:
            pass
    return n


def listen_counters() -> dict[str, int]:
    """The kernel's TcpExt ListenOverflows / ListenDrops / SyncookiesSent (machine-wide):
    a full accept queue drops SYNs, and the client retries a second later."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            kv = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return {
                k: int(kv[k])
                for k in ("ListenOverflows", "ListenDrops", "SyncookiesSent")
                if k in kv
            }
    return {}


def counters_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What each counter grew by (the ones read both times)."""
    return {k: after[k] - before[k] for k in before if k in after}
