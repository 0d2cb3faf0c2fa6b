"""What the benchmark runs and where things are: one place for the peers, scenarios,
extras and the storm's and burst's fixed figures."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
HARNESS = BENCH / "harness"
RESULTS = BENCH / "results"
PY = sys.executable

ALL_PEERS = ["nchan", "ticker", "ticker-asgi", "fanout", "naive"]
OTHER_PEERS = ["nchan2"]  # only when named in --peers
ALL_SCENARIOS = [
    "S3",
    "S1-1000",
    "S1-2000",
    "S1-5000",
    "S1-10000",
    "S2",
    "C-2000",
    "C-10000",
    "B-10000",
]
ALL_EXTRAS = ["floors", "post", "workers", "profile"]
QUICK_PEERS = ["ticker", "nchan"]
QUICK_SCENARIOS = ["S3-2000", "S1-1000"]
# The peers issue #18's goals compare; a full run plays the storm and burst scenarios
# (C-N, B-N) for these only.
GOAL_PEERS = ["ticker", "ticker-asgi", "nchan", "nchan2"]

# C-N: residents, their items, and when the storm starts (s after publishing starts).
STORM_RESIDENTS = 1000
STORM_ITEMS = 300
STORM_RATE = 20.0
STORM_AT_S = 4.0
STORM_HOLD_S = 3.0  # after the last storm reader connected
STORM_IDLE_HOLD_S = 1.0  # run 1: the storm onto idle residents
STORM_PRELOAD = 20  # items published before the storm onto idle residents (ticker keeps 20)
# B-N: idle time before the first item, items, seconds between them.
BURST_IDLE_S = 5.0
BURST_ITEMS = 4
BURST_GAP_S = 3.0

# Every item's headline: the load generator reads the markers back.
HEADLINE = "Load seq={seq} ts={ts} run={run}"
# The publish API's body (bench/harness/post_load.py and publish.py fill in the markers).
POST_TEMPLATE = '{"headline":"' + HEADLINE + '"}'
# Every load generator spreads its connections over this many loopback source addresses.
SRC_IPS = 4


def find_pyspy() -> str | None:
    """py-spy: $PYSPY, next to this Python, on PATH, or a scratch venv; None if absent."""
    candidates = [
        os.environ.get("PYSPY", ""),
        str(Path(PY).parent / "py-spy"),
        shutil.which("py-spy") or "",
        "/tmp/pyspy-venv/bin/py-spy",
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)
