"""The page: its sections in order, written to one file."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from bench.report.about import (
    section_floors,
    section_header,
    section_machine,
    section_method,
    section_reproduce,
)
from bench.report.goals import section_goals
from bench.report.profile import section_profile
from bench.report.results import Results, load_results
from bench.report.sections import (
    section_burst,
    section_fanout,
    section_idle,
    section_post,
    section_ratios,
    section_storm,
    section_workers,
)
from bench.report.targets import section_targets

# Each section returns its lines (none when its scenarios did not run).
SECTIONS: list[Callable[[Results], list[str]]] = [
    section_header,
    section_goals,
    section_targets,
    section_machine,
    section_method,
    section_idle,
    section_fanout,
    section_storm,
    section_burst,
    section_ratios,
    section_post,
    section_workers,
    section_floors,
    section_profile,
    section_reproduce,
]


def render(folder: Path, merge: Iterable[Path] = ()) -> str:
    """The page for a results folder and the follow-up folders merged into it."""
    res = load_results(folder, merge)
    lines = [line for section in SECTIONS for line in section(res)]
    return "\n".join(lines).rstrip() + "\n"


def write(folder: Path, target: Path, merge: Iterable[Path] = ()) -> None:
    target.write_text(render(folder, merge))
