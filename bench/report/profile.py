"""Where the time goes: each py-spy profile of the run as bucket shares and the top self
time (bench/profile_summary.py), then the hand-written analysis, bench/findings.md."""

from __future__ import annotations

from pathlib import Path

from bench.profile_summary import summarize
from bench.report.figures import f, figures
from bench.report.results import BENCH, JSON, REPO, Results
from bench.report.tables import PROFILE_BUCKETS, PROFILE_SELF

FINDINGS = BENCH / "findings.md"
TOP = 15  # functions in the self-time table


def _describe(run: JSON, settings: JSON) -> str:
    """What ran while the profile was taken."""
    params = run["params"]
    x = figures(run)
    if params["clients"]:
        return (
            f"{params['clients']:,} readers, {params['count']} items at {params['rate']:g}/s "
            f"(XADD): {f(x.deliveries)} deliveries, server {f(x.srv_cpu_run, 2)} s CPU = "
            f"{f(x.us_per_deliv)} µs per delivery while profiled"
        )
    return (
        f"no readers, {params['count']:,} POSTs over {settings['post_conns']} connections: "
        f"{f(x.pub_s)} items/s while profiled"
    )


def _profile(res: Results, pf: Path) -> list[str]:
    label = pf.stem.removeprefix("profile-")
    run = res.runs.get(f"ticker-profile-{label}")
    summ = summarize(pf, top=TOP)
    desc = _describe(run, res.meta["settings"]) if run else ""
    cmd = (run.get("profile_cmd") if run else None) or ""
    cmd = cmd.replace(str(pf.parent), "bench/results/" + pf.parent.name)
    return [
        f"### {label}: {desc}",
        "",
        f"{summ['samples']:,} on-CPU samples of the server's main thread "
        f"(`{cmd.replace(str(REPO) + '/', '')}`). Each sample is counted once, in the "
        "innermost bucket it matches (`bench/profile_summary.py`):",
        "",
        *PROFILE_BUCKETS.render(summ["buckets"]),
        "",
        "Top self time (leaf Python frames; time in C code and system calls is charged to the "
        "Python frame that called it, e.g. `transport.write()` to uvicorn's `send`):",
        "",
        *PROFILE_SELF.render(summ["self"][:TOP]),
        "",
    ]


def section_profile(res: Results) -> list[str]:
    """py-spy summaries, then bench/findings.md (only with a profile: the findings read
    them)."""
    profiles = res.profiles()
    if not profiles:
        return []
    out = ["## Where the time goes (py-spy)", ""]
    for pf in profiles:
        out += _profile(res, pf)
    if FINDINGS.exists():
        out += [FINDINGS.read_text().strip(), ""]
    return out
