"""Issue #18's goals, on top of the page: one row per goal figure with ticker's figure,
nchan's, the ratio, met or not, and ticker-asgi's where it ran.

`GOALS` below is the list of goals; each says how its figure is read from a peer's run
(`Figure`: the value the rule judges, the text the table shows, and whether the rest
of the goal, such as "0 refused", holds) and the rule that judges it against nchan's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from bench.report.figures import Figures, f, figures, storm_figures
from bench.report.names import of_kind, scen_sort, size
from bench.report.results import JSON, Results
from bench.report.rows import GoalRow
from bench.report.tables import GOALS, GOALS_ASGI


class Figure(NamedTuple):
    value: float | None
    text: str
    ok: bool  # the rest of the goal holds (e.g. nothing refused)


Rule = Callable[[Any, Any], bool | None]  # (peer's value, nchan's) -> met; None: cannot tell


@dataclass(frozen=True)
class Goal:
    label: str
    target: str
    figure: Callable[[str], Figure | None]  # peer -> its figure; None: not run
    rule: Rule


def within(k: float) -> Rule:
    """Met when the peer's value is at most k times nchan's."""
    return lambda v, nv: None if v is None or nv is None else v <= k * nv


def zero(v: Any, _nv: Any) -> bool | None:
    return None if v is None else v == 0


def _problems(name: str, sub: JSON | None) -> str | None:
    """A readers' result with anything lost, duplicated, out of order, gapped or cut off."""
    if not sub or "lost" not in sub:
        return f"{name}: no result"
    keys = (
        ("lost", "lost"),
        ("duplicates", "dup"),
        ("out_of_order", "out of order"),
        ("gap_events", "gaps"),
        ("disconnects", "cut-offs"),
    )
    if not any(sub.get(k) for k, _ in keys):
        return None
    return f"{name}: " + ", ".join(f"{lab} {f(sub.get(k))}" for k, lab in keys)


def delivery_check(res: Results, peer: str) -> tuple[list[str], list[str]]:
    """Every run of `peer` whose readers expect every item (S1, S2, C-N with its
    no-storm baseline, B-N): (runs checked, problems)."""
    names: list[str] = []
    bad: list[str] = []
    for s in sorted(res.scen, key=scen_sort):
        if peer not in res.scen[s] or not s.startswith(("S1", "S2", "C-", "B-")):
            continue
        d = res.scen[s][peer][1]
        names.append(s)
        parts = [(s, d.get("subscribers"))]
        if "baseline" in d:
            parts.append((f"{s} without the storm", (d["baseline"] or {}).get("subscribers")))
        bad += [x for x in (_problems(n, sub) for n, sub in parts) if x]
    return names, bad


def _named(kind: str, sizes: tuple[int, ...], have: list[str]) -> list[str]:
    """The scenarios of this kind that ran, plus the goal's sizes that did not."""
    present = {size(x) for x in have}
    return sorted(have + [f"{kind}-{n}" for n in sizes if n not in present], key=scen_sort)


def _first(res: Results, s: str) -> JSON | None:
    """The first run of scenario `s` (any peer), None if none."""
    return next((d[1] for d in res.scen.get(s, {}).values()), None)


FigureOf = Callable[[str], Figure | None]  # a goal's figure for a peer; None: not run


def plain(res: Results, s: str, get: Callable[[Figures], Any], unit: str) -> FigureOf:
    """A figure of a run of scenario `s` as it is, with its unit."""

    def figure(peer: str) -> Figure | None:
        d = res.run_of(peer, s)
        if d is None:
            return None
        v = get(figures(d))
        return Figure(v, f"{f(v)}{unit}", True)

    return figure


def storm_connect(res: Results, s: str) -> FigureOf:
    """C-N run 1's CPU per connecting reader; met only with nothing refused."""

    def figure(peer: str) -> Figure | None:
        d = res.run_of(peer, s)
        if d is None:
            return None
        x = storm_figures(d)
        return Figure(x.us, f"{f(x.us)} µs, {f(x.refused)} refused", x.refused == 0)

    return figure


def storm_delay(res: Results, s: str) -> FigureOf:
    """The residents' p99 with the storm minus without it."""

    def figure(peer: str) -> Figure | None:
        d = res.run_of(peer, s)
        if d is None:
            return None
        x = storm_figures(d)
        if x.delay_p99 is None:
            return Figure(None, "–", True)
        text = f"{x.delay_p99:+,.1f} ms (p99 {f(x.base.get('p99'))} → {f(x.with_storm.get('p99'))})"
        return Figure(x.delay_p99, text, True)

    return figure


def delivered(res: Results) -> FigureOf:
    """The runs with anything lost, duplicated, out of order or cut off."""

    def figure(peer: str) -> Figure | None:
        names, bad = delivery_check(res, peer)
        if not names:
            return None
        if not bad:
            return Figure(0, f"0 in {len(names)} runs ({', '.join(names)})", True)
        return Figure(len(bad), "; ".join(bad), True)

    return figure


def storm_goals(res: Results) -> list[Goal]:
    """Per C-N that ran (and C-2000, C-10000): the connect CPU, then the delay."""
    storms = _named("C", (2000, 10000), of_kind(res.scen, "C-"))
    connect = []
    for s in storms:
        first = _first(res, s)
        resid = storm_figures(first).residents if first else None
        label = (
            f"server CPU per connecting reader: {f(size(s))} connecting at once"
            + (f" onto {f(resid)} residents" if resid else "")
            + f" ({s})"
        )
        connect.append(Goal(label, "≤ 2× nchan's, 0 refused", storm_connect(res, s), within(2.0)))
    delay = [
        Goal(
            f"the storm's delay to the residents: their p99 with it − without it ({s})",
            "≤ nchan's",
            storm_delay(res, s),
            within(1.0),
        )
        for s in storms
    ]
    return connect + delay


def fanout_goals(res: Results) -> list[Goal]:
    return [
        Goal(
            "server CPU per delivery, 2,000 readers × 20 items/s (S1-2000)",
            "≤ 1.0× nchan's",
            plain(res, "S1-2000", lambda x: x.us_per_deliv, " µs"),
            within(1.0),
        ),
        Goal(
            "p99 latency, 2,000 readers × 20 items/s (S1-2000)",
            "≤ nchan's",
            plain(res, "S1-2000", lambda x: x.p99, " ms"),
            within(1.0),
        ),
        Goal(
            "p99 latency, 5,000 readers × 20 items/s (S1-5000)",
            "≤ 2× nchan's",
            plain(res, "S1-5000", lambda x: x.p99, " ms"),
            within(2.0),
        ),
        Goal(
            "lost, 5,000 readers × 20 items/s (S1-5000)",
            "0",
            plain(res, "S1-5000", lambda x: x.lost, ""),
            zero,
        ),
    ]


def idle_goal(res: Results) -> Goal:
    """RSS per idle reader, at 10,000 readers, or the largest S3 that ran."""
    scen = res.scen
    s3s = of_kind(scen, "S3")
    s3 = next(
        (x for x in s3s if any(d[1]["params"].get("clients") == 10000 for d in scen[x].values())),
        s3s[-1] if s3s else "S3",
    )
    first = _first(res, s3)
    n = first["params"].get("clients") if first else 10000
    return Goal(
        f"RSS per idle reader, {f(n)} readers ({s3})"
        + ("" if n == 10000 else "; the goal is at 10,000"),
        "≤ 12 KB",
        plain(res, s3, lambda x: x.rss_conn_kb, " KB"),
        lambda v, _nv: None if v is None else v <= 12.0,
    )


def burst_goals(res: Results) -> list[Goal]:
    """Per B-N that ran (and B-10000): the time until the last reader had an item."""
    out = []
    for s in _named("B", (10000,), of_kind(res.scen, "B-")):
        first = _first(res, s)
        k = first["params"].get("count") if first else None
        label = (
            f"burst: time until the last of {f(size(s))} idle readers has an urgent item"
            + (f" (the worst of {k} items)" if k else "")
            + f" ({s})"
        )
        out.append(Goal(label, "≤ nchan's", plain(res, s, lambda x: x.max, " ms"), within(1.0)))
    return out


def goals(res: Results) -> list[Goal]:
    """The goals, in the table's order, for the scenarios that ran (and the goal's own)."""
    delivery = Goal(
        "nothing lost, duplicated, out of order or cut off, in every run (S1, S2, C-N with "
        "and without the storm, B-N)",
        "0",
        delivered(res),
        zero,
    )
    return [*storm_goals(res), *fanout_goals(res), idle_goal(res), *burst_goals(res), delivery]


def goal_row(goal: Goal) -> GoalRow:
    """ticker's and nchan's figures, the ratio, met or not, and ticker-asgi's."""
    n = goal.figure("nchan")

    def judge(x: Figure | None) -> str:
        if x is None:
            return "not run"
        ok = goal.rule(x.value, n.value if n else None) if x.value is not None else None
        if ok is None:
            return "–"
        return "yes" if ok and x.ok else "no"

    def rat(x: Figure | None) -> str:
        if x is None or n is None or x.value is None or n.value is None:
            return "–"
        if x.value < 0 or n.value <= 0:
            return "–"
        return f"{x.value / n.value:.2f}×"

    t = goal.figure("ticker")
    g = goal.figure("ticker-asgi")
    r = rat(g)
    return GoalRow(
        goal=goal.label,
        target=goal.target,
        ticker=t.text if t else "not run",
        nchan=n.text if n else "not run",
        ratio=rat(t),
        met=judge(t),
        asgi=f"{g.text}{'' if r == '–' else f' ({r})'}: {judge(g)}" if g else "not run",
    )


def section_goals(res: Results) -> list[str]:
    """Issue #18's goals, one row per figure: ticker, nchan, the ratio, met or not."""
    asgi = any("ticker-asgi" in res.scen[s] for s in res.scen)
    table = GOALS + [GOALS_ASGI] if asgi else GOALS
    return [
        "## Goals (issue #18)",
        "",
        "ticker and nchan from the same run, one worker each. **met?** is ticker's"
        + (
            "; the last column is ticker-asgi's figure, its ratio to nchan's and whether it "
            "meets the goal"
            if asgi
            else ""
        )
        + ". How each figure is made: the sections below (connection storm, burst, fan-out, "
        "idle readers).",
        "",
        *table.render(goal_row(g) for g in goals(res)),
        "",
    ]
