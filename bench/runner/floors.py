"""The machine's per-delivery floor: one write()/read() per socket per round in C
(bench/tools/write_cost.c), uvloop transport.write() of a pre-framed chunk
(py_write_cost.py), and the asyncio building blocks of a delivery (asyncio_costs.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.runner.constants import BENCH, PY
from bench.runner.log import log
from bench.runner.procs import Arg

FRAME_BYTES = 455  # an item's SSE frame, as every peer sends it


def _json_of(cmd: list[Arg]) -> dict[str, Any]:
    """A floor tool's JSON output, or its error."""
    t = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120)
    try:
        res: dict[str, Any] = json.loads(t.stdout)
    except ValueError:
        return {"error": t.stderr[-300:]}
    return res


def floors(out: Path, frame_bytes: int = FRAME_BYTES) -> dict[str, Any]:
    """Measure the floors; floors.json in `out`."""
    res: dict[str, Any] = {"frame_bytes": frame_bytes}
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc:
        exe = out / "write_cost"
        c = subprocess.run(
            [gcc, "-O2", "-o", exe, BENCH / "tools/write_cost.c"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if c.returncode == 0:
            for n in (1000, 5000):
                res[f"c_{n}"] = _json_of([exe, n, frame_bytes, 100])
        exe.unlink(missing_ok=True)
    uvloop: list[Arg] = [PY, BENCH / "tools/py_write_cost.py", "--conns", 1000]
    res["uvloop_1000"] = _json_of([*uvloop, "--bytes", frame_bytes, "--rounds", 50])
    res["asyncio_costs"] = _json_of([PY, BENCH / "tools/asyncio_costs.py", "--n", 50000])
    (out / "floors.json").write_text(json.dumps(res, indent=1) + "\n")
    log(f"floors: {json.dumps(res)}")
    return res
