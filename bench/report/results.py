"""Loading: a results folder (plus any follow-up folders merged in) as one `Results`.

A folder holds `meta.json` (what was asked, the machine, the settings), `floors.json`
(the machine's floor, when measured), one JSON per run (`<peer>-<scenario>.json`) and
py-spy profiles (`profile-<label>.txt`). The JSON is the runner's and stays loose
(`JSON` below): the report reads it with `.get()` and shows `–` for what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
# The file names that are not runs.
NOT_RUNS = ("meta.json", "floors.json")


@dataclass(frozen=True)
class Rerun:
    """Where a merged cell came from."""

    folder: str
    argv: str
    started: str
    commit: str


@dataclass
class Results:
    """One results folder and the cells of follow-up runs merged into it."""

    folder: Path
    merge: list[Path]
    meta: JSON
    runs: dict[str, JSON]
    floors: JSON | None
    reruns: list[tuple[str, Rerun]] = field(default_factory=list)

    @cached_property
    def scen(self) -> dict[str, dict[str, tuple[str, JSON]]]:
        """scenario -> peer -> (file stem, run)."""
        out: dict[str, dict[str, tuple[str, JSON]]] = {}
        for key, d in self.runs.items():
            peer = str(d.get("peer") or d.get("label"))
            out.setdefault(d["scenario"], {})[peer] = (key, d)
        return out

    @property
    def regen(self) -> str:
        """The command that writes this page again."""
        return f"bench/run --report bench/results/{self.folder.name}" + "".join(
            f" --merge bench/results/{m.name}" for m in self.merge
        )

    def run_of(self, peer: str, s: str) -> JSON | None:
        """`peer`'s run of scenario `s`, None if it did not run."""
        d = self.scen.get(s, {}).get(peer)
        return d[1] if d else None

    def has(self, s: str, *peers: str) -> bool:
        """Scenario `s` ran for every one of `peers`."""
        return s in self.scen and all(p in self.scen[s] for p in peers)

    def profiles(self) -> list[Path]:
        """The py-spy profiles, a merged folder's replacing the first one's by name."""
        found = {p.name: p for p in self.folder.glob("profile-*.txt")}
        for mdir in self.merge:
            found.update({p.name: p for p in mdir.glob("profile-*.txt")})
        return [found[k] for k in sorted(found)]


def load(folder: Path) -> tuple[JSON, dict[str, JSON], JSON | None]:
    """(meta, runs by file stem, floors or None) of one folder."""
    runs = {}
    for p in sorted(folder.glob("*.json")):
        if p.name in NOT_RUNS:
            continue
        runs[p.stem] = json.loads(p.read_text())
    meta = json.loads((folder / "meta.json").read_text())
    floors_file = folder / "floors.json"
    floors = json.loads(floors_file.read_text()) if floors_file.exists() else None
    return meta, runs, floors


def load_results(folder: Path, merge: Iterable[Path] = ()) -> Results:
    """The folder's runs, with the cells of follow-up runs added or replacing its own."""
    folder = Path(folder).resolve()
    merged = [Path(m).resolve() for m in merge]
    meta, runs, floors = load(folder)
    reruns: list[tuple[str, Rerun]] = []
    for mdir in merged:
        mmeta, mruns, _ = load(mdir)
        for k, d in mruns.items():
            rerun = Rerun(
                folder=mdir.name,
                argv=" ".join(mmeta["argv"]),
                started=mmeta["started"],
                commit=(mmeta["machine"].get("git") or {}).get("commit", "")[:12],
            )
            runs[k] = d
            # A cell measured again in a later --merge replaces the earlier one.
            reruns = [r for r in reruns if r[0] != k] + [(k, rerun)]
    return Results(folder, merged, meta, runs, floors, reruns)
