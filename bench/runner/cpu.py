"""A server's CPU time from /proc: summed over its processes, and sampled in a thread so
a window's CPU can be cut out afterwards."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Generic, Self, TypeVar

T = TypeVar("T")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_split(pids: Sequence[int]) -> dict[str, float]:
    """User and system CPU seconds and context switches summed over `pids`."""
    u = st = vol = invol = 0.0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_bytes()
            fields = raw[raw.rindex(b")") + 2 :].split()
            u += int(fields[11]) / CLK_TCK
            st += int(fields[12]) / CLK_TCK
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches:"):
                    invol += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return {"user_s": u, "sys_s": st, "vol_cs": vol, "invol_cs": invol}


def cpu_run_s(pids: Sequence[int]) -> float | None:
    """CPU seconds summed over every thread of `pids`, from /proc/PID/task/TID/schedstat
    (nanoseconds; /proc/PID/stat counts in 10 ms ticks). None if the kernel has no
    schedstat."""
    tot, seen = 0, False
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                tot += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_bytes().split()[0])
                seen = True
            except (OSError, ValueError, IndexError):
                pass
    return tot / 1e9 if seen else None


class Sampler(Generic[T]):
    """`read()` every `every` s in a thread, as (time, value) pairs."""

    def __init__(self, read: Callable[[], T], every: float) -> None:
        self.read, self.every = read, every
        self.samples: list[tuple[float, T]] = []
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.read()))
            self._stop.wait(self.every)

    def start(self) -> Self:
        self._th.start()
        return self

    def stop(self, join: float = 5.0) -> None:
        self._stop.set()
        if self._th.is_alive():
            self._th.join(join)


class SplitSampler(Sampler[dict[str, float]]):
    """The user/sys split of `pids` every 0.25 s, to cut it at a moment known only
    afterwards (when the load generator took its last server sample)."""

    def __init__(self, pids: Sequence[int]) -> None:
        pids = list(pids)
        super().__init__(lambda: cpu_split(pids), 0.25)

    def last_before(self, t: float) -> dict[str, float] | None:
        """The last sample at or before `t` (the first one if none); None without any."""
        if not self.samples:
            return None
        before = [x for ts, x in self.samples if ts <= t] or [self.samples[0][1]]
        return before[-1]


class CpuSampler(Sampler[float]):
    """The server's CPU seconds every `every` s, as (time, cpu) pairs; the CPU at any time
    in between is interpolated linearly."""

    def __init__(self, pids: Sequence[int], every: float = 0.02) -> None:
        self.pids = list(pids)
        self.source = "schedstat" if cpu_run_s(self.pids) is not None else "stat"
        super().__init__(self.cpu_now, every)

    def cpu_now(self) -> float:
        if self.source == "schedstat":
            return cpu_run_s(self.pids) or 0.0
        c = cpu_split(self.pids)
        return c["user_s"] + c["sys_s"]

    def stop(self, join: float = 5.0) -> None:
        """Stop, with one last sample."""
        super().stop(join)
        self.samples.append((time.time(), self.cpu_now()))

    def at(self, t: float) -> float | None:
        sm = self.samples
        if not sm or t < sm[0][0] - 0.05 or t > sm[-1][0] + 0.05:
            return None
        for (t0, c0), (t1, c1) in zip(sm, sm[1:], strict=False):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
        return sm[0][1] if t < sm[0][0] else sm[-1][1]

    def cpu(self, t0: float, t1: float) -> float | None:
        """CPU seconds in [t0, t1]; None outside the sampled time."""
        a, b = self.at(t0), self.at(t1)
        return None if a is None or b is None else b - a

    def rate(self, t0: float | None, t1: float | None, min_s: float = 0.5) -> float | None:
        """CPU seconds per second over [t0, t1]; None for a window under min_s."""
        if t0 is None or t1 is None or t1 - t0 < min_s:
            return None
        c = self.cpu(t0, t1)
        return None if c is None else c / (t1 - t0)

    def dump(self, t0: float | None = None) -> list[list[float]]:
        """The samples as [s since t0, cpu s] (t0: the first sample by default)."""
        t0 = self.samples[0][0] if t0 is None and self.samples else t0
        return [[round(t - (t0 or 0.0), 3), round(c, 4)] for t, c in self.samples]
