"""The runner's progress, on stderr with the time (stdout is left to the tools it runs)."""

from __future__ import annotations

import sys
import time


def log(*a: object) -> None:
    print(time.strftime("[%H:%M:%S]"), *a, file=sys.stderr, flush=True)
