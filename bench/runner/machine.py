"""meta.json: what was asked, the machine and its software, the settings. The page's
"Machine and software" section is written from it."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.runner.constants import REPO, find_pyspy
from bench.runner.context import Options

# The Python packages whose versions the page names.
PACKAGES = ["uvicorn", "starlette", "sse-starlette", "uvloop", "httptools", "redis", "pydantic"]
PACKAGES += ["anyio"]


def _sh(cmd: str | list[str]) -> str:
    """A command's stdout, stripped; "" if it fails (a string runs in a shell)."""
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=10, shell=isinstance(cmd, str)
        ).stdout.strip()
    except Exception:
        return ""


def _first_line(path: str, prefix: str) -> str | None:
    for line in Path(path).read_text().splitlines():
        if line.startswith(prefix):
            return line
    return None


def versions() -> dict[str, str | None]:
    vers: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            vers[p] = md.version(p)
        except md.PackageNotFoundError:
            vers[p] = None
    vers["python"] = platform.python_version()
    vers["redis-server"] = (
        _sh("redis-server --version").split(" v=")[-1].split()[0]
        if shutil.which("redis-server")
        else None
    )
    vers["nginx"] = (_sh("nginx -v 2>&1").split("/")[-1] or None) if shutil.which("nginx") else None
    vers["nchan"] = _sh("dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null") or None
    spy = find_pyspy()
    vers["py-spy"] = _sh([spy, "--version"]).split()[-1] if spy else None
    return vers


def git_state() -> dict[str, Any]:
    """ticker's commit, and whether ticker/ differs from it (a hash of the diff)."""
    git: dict[str, Any] = {
        "commit": _sh(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "dirty_files": _sh(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "ticker"]
        ).splitlines(),
    }
    diff = subprocess.run(
        ["git", "-C", str(REPO), "diff", "HEAD", "--", "ticker"], capture_output=True, timeout=20
    ).stdout
    git["ticker_diff_sha256"] = hashlib.sha256(diff).hexdigest()[:16] if diff else None
    return git


def machine_info() -> dict[str, Any]:
    model = _first_line("/proc/cpuinfo", "model name")
    mem = _first_line("/proc/meminfo", "MemTotal:")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "nproc": os.cpu_count(),
        "model": model.split(":", 1)[1].strip() if model else "",
        "kernel": platform.release(),
        "mem_gb": round((int(mem.split()[1]) if mem else 0) / 1048576, 1),
        "fd_soft": soft,
        "fd_hard": hard,
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "versions": versions(),
        "git": git_state(),
        "somaxconn": _sh("cat /proc/sys/net/core/somaxconn"),
    }


def start_meta(
    o: Options, mode: str, peers: list[str], scenarios: list[str], extras: list[str]
) -> dict[str, Any]:
    """The run's meta.json as it starts: what was asked, the machine, the settings."""
    return {
        "mode": mode,
        "argv": ["bench/run", *sys.argv[1:]],
        "peers": peers,
        "scenarios": scenarios,
        "extras": extras,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "settings": o.recorded(),
    }
