"""Every process a run starts, stopped by PID (with the descendants it had), also on
Ctrl-C and on errors. Nothing is ever stopped by name."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from bench.runner.log import log

Arg = str | int | float | Path  # a command line's argument, before str()
Popen = subprocess.Popen[bytes]


def quote(cmd: Sequence[Arg]) -> str:
    """A command line as a shell would take it (kept in the result JSON)."""
    return " ".join(shlex.quote(str(c)) for c in cmd)


def _ppid_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            s = Path(f"/proc/{d}/stat").read_bytes()
            ppid = int(s[s.rindex(b")") + 2 :].split()[1])
            kids.setdefault(ppid, []).append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return kids


def descendants(pid: int) -> list[int]:
    kids = _ppid_map()
    out, todo = [], list(kids.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def alive(pid: int) -> bool:
    try:
        s = Path(f"/proc/{pid}/stat").read_bytes()
        return s[s.rindex(b")") + 2 : s.rindex(b")") + 3] != b"Z"
    except OSError:
        return False


class Procs:
    """Every process this run starts; stopped by PID (and its recorded descendants)."""

    def __init__(self) -> None:
        self.live: dict[int, tuple[str, Popen]] = {}

    def spawn(
        self,
        name: str,
        cmd: Sequence[Arg],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        logfile: Path | None = None,
        stdout: int | None = None,
    ) -> Popen:
        """Start `cmd` in a session of its own; stderr (and stdout unless given) goes
        to `logfile`, or nowhere."""
        err: IO[bytes] | int = open(logfile, "ab") if logfile else subprocess.DEVNULL  # noqa: SIM115
        try:
            p = subprocess.Popen(
                [str(c) for c in cmd],
                env=env,
                cwd=cwd,
                stdout=stdout if stdout is not None else err,
                stderr=err,
                start_new_session=True,
            )
        finally:
            if not isinstance(err, int):
                err.close()  # the child has its own copy
        self.live[p.pid] = (name, p)
        return p

    def stop(self, p: Popen | None, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
        """`sig` to `p`, then SIGKILL to it and its descendants still alive after `grace`."""
        if p is None or p.pid not in self.live:
            return
        name = self.live[p.pid][0]
        t0 = time.monotonic()
        tree = descendants(p.pid)
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (p.poll() is None or any(alive(x) for x in tree)):
            time.sleep(0.1)
        for x in [p.pid, *tree]:
            if alive(x):
                log(f"{name}: pid {x} still alive after {grace:.0f}s, SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(x, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=10)
        self.live.pop(p.pid, None)
        if time.monotonic() - t0 > 3:
            log(f"{name}: stopping took {time.monotonic() - t0:.1f}s")

    def stop_all(self) -> None:
        for _pid, (_name, p) in reversed(list(self.live.items())):
            self.stop(p, grace=5.0)

    def output(self, p: Popen, timeout: float) -> bytes:
        """`p`'s stdout once it exits; killed (and its output lost) after `timeout`."""
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(p, sig=signal.SIGKILL, grace=2)
            out = b""
        self.live.pop(p.pid, None)
        return out

    def result(self, p: Popen, timeout: float) -> dict[str, Any]:
        """A load generator's JSON result (its whole stdout), or the error."""
        out = self.output(p, timeout)
        try:
            res: dict[str, Any] = json.loads(out)
        except ValueError:
            return {"error": out.decode()[-2000:], "rc": p.returncode}
        return res


def last_json_line(out: str) -> dict[str, Any] | None:
    """A tool's result: the JSON on its last line of output; None if there is none."""
    try:
        res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return res
