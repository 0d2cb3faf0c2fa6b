"""`python -m bench.report FOLDER [TARGET]`: the page for a results folder (TARGET:
docs/performance.md by default). `bench/run --report` does the same, with --merge."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.report.page import write
from bench.report.results import REPO

if __name__ == "__main__":
    write(
        Path(sys.argv[1]),
        Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "docs" / "performance.md",
    )
