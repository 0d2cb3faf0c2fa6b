"""Issue #5's targets, one row each, with whether they were met. Each `target_*` returns
its rows (none when the scenarios it is about did not run)."""

from __future__ import annotations

from bench.report.figures import Figures, f, figures, ratio
from bench.report.names import scen_sort
from bench.report.results import Results
from bench.report.rows import TargetRow
from bench.report.tables import TARGETS


def _pair(res: Results, s: str) -> tuple[Figures, Figures]:
    """ticker's and nchan's figures in scenario `s` (both ran)."""
    return figures(res.scen[s]["ticker"][1]), figures(res.scen[s]["nchan"][1])


def target_cpu(res: Results) -> list[TargetRow]:
    """Server CPU per delivery against nchan, at the largest S1 and at 1,000."""
    scen = res.scen
    s_big = max(
        (s for s in scen if s.startswith("S1-") and res.has(s, "ticker", "nchan")),
        key=lambda s: (
            int(s.split("-")[1].split()[0]) if s.split("-")[1].split()[0].isdigit() else 0
        ),
        default=None,
    )
    rows = []
    if s_big:
        t, n = _pair(res, s_big)
        r = ratio(t.us_per_deliv, n.us_per_deliv)
        met = "yes" if r is not None and r <= 1.5 else "no"
        caveat = ""
        if (t.p50 or 0) > 10 * (n.p50 or 1e9) or (n.pub_s or 20) < 18:
            met += " on paper (saturated: see the analysis below)"
            caveat = (
                f" — ticker p50 {f(t.p50)} ms behind, nchan p50 {f(n.p50)} ms with its "
                f"publisher slowed to {f(n.pub_s)}/s"
            )
        rows.append(
            TargetRow(
                f"server CPU per delivery at {s_big.split('-')[1]} readers ≤ 1.5× nchan's",
                f"{f(t.us_per_deliv)} µs",
                f"nchan {f(n.us_per_deliv)} µs (ratio {f(r, 2)}×){caveat}",
                met,
            )
        )
    if s_big and s_big != "S1-1000" and res.has("S1-1000", "ticker", "nchan"):
        t, n = _pair(res, "S1-1000")
        r = ratio(t.us_per_deliv, n.us_per_deliv)
        rows.append(
            TargetRow(
                "the same at 1,000 readers, where both keep up (no coalescing)",
                f"{f(t.us_per_deliv)} µs",
                f"nchan {f(n.us_per_deliv)} µs (ratio {f(r, 2)}×)",
                "yes" if r is not None and r <= 1.5 else "no",
            )
        )
    return rows


def target_memory(res: Results) -> list[TargetRow]:
    """Idle memory per reader."""
    scen = res.scen
    s3 = next(
        (s for s in sorted(scen, key=scen_sort) if s.startswith("S3") and "ticker" in scen[s]), None
    )
    if not s3:
        return []
    t = figures(scen[s3]["ticker"][1])
    nchan = res.run_of("nchan", s3)
    kb = t.rss_conn_kb
    return [
        TargetRow(
            f"idle memory ≤ 20 KB per reader ({s3})",
            f"{f(kb)} KB (RSS)",
            f"nchan {f(figures(nchan).rss_conn_kb) if nchan else '–'} KB",
            "yes" if kb is not None and kb <= 20 else "no",
        )
    ]


def target_loss(res: Results) -> list[TargetRow]:
    """Nothing lost, duplicated or out of order."""
    clean, bad = [], []
    for d in sorted(res.runs.values(), key=lambda d: scen_sort(d["scenario"])):
        if d.get("peer") != "ticker" or not d["scenario"].startswith(("S1", "S2")):
            continue
        x = figures(d)
        gaps = (d.get("subscribers") or {}).get("gap_events") or 0
        if x.lost or x.dups or x.ooo or x.cutoffs or gaps:
            bad.append(
                f"{d['scenario']}: lost {f(x.lost)}, dup {f(x.dups)}, out of order "
                f"{f(x.ooo)}, gaps {f(gaps)}, cut-offs {f(x.cutoffs)}"
            )
        else:
            clean.append(d["scenario"])
    if not clean and not bad:
        return []
    text = "; ".join(
        ([f"{', '.join(clean)}: 0 lost, 0 dup, in order, no cut-off"] if clean else []) + bad
    )
    met = "yes" if not bad else "no (see the analysis below)"
    return [TargetRow("0 lost / duplicated, in order", text, None, met)]


def target_latency(res: Results) -> list[TargetRow]:
    """p99 latency at 1,000 readers against nchan."""
    if not res.has("S1-1000", "ticker", "nchan"):
        return []
    t, n = _pair(res, "S1-1000")
    ok = t.p99 is not None and n.p99 is not None and t.p99 <= n.p99
    return [
        TargetRow(
            "p99 latency at 1,000 readers, 20 items/s ≤ nchan's",
            f"{f(t.p99)} ms",
            f"nchan {f(n.p99)} ms",
            "yes" if ok else "no",
        )
    ]


# The publish API's configurations: 1 worker and (with the workers extra) `--workers 2`.
POST_CONFIGS = (("ticker", "1 worker"), ("ticker-w2", "`--workers 2`"))


def target_post(res: Results) -> list[TargetRow]:
    """The publish API's rate and p99 on the same POST load, per worker configuration: met
    if either configuration meets both numbers."""
    scen = res.scen

    def readers(s: str) -> int:
        clients: int = next(scen[s][p][1] for p, _ in POST_CONFIGS if p in scen[s])["params"][
            "clients"
        ]
        return clients

    post_scen = sorted(
        (s for s in scen if s.startswith("POST-") and any(p in scen[s] for p, _ in POST_CONFIGS)),
        key=lambda s: (readers(s), s),
    )
    rows = []
    for s in post_scen:
        configs = [(lab, scen[s][p][1]) for p, lab in POST_CONFIGS if p in scen[s]]
        named = [lab for lab, _ in configs] != ["1 worker"]  # 1 worker alone: as before
        cells, ok_labs = [], []
        for lab, d in configs:
            x = figures(d)
            if (x.pub_s or 0) >= 2000 and (x.pub_p99 or 1e9) < 20:
                ok_labs.append(lab)
            cells.append(
                (f"{lab}: " if named else "") + f"{f(x.pub_s)} items/s, p99 {f(x.pub_p99)} ms"
            )
        if not ok_labs:
            met = "no"
        elif not named:
            met = "yes"
        else:
            met = f"yes ({' and '.join(ok_labs)})"
        rows.append(
            TargetRow(
                "POST ≥ 2,000 items/s with p99 < 20 ms, "
                f"{configs[0][1]['params']['clients']} readers attached",
                "<br>".join(cells),
                None,
                met,
            )
        )
    return rows


def target_workers(res: Results) -> list[TargetRow]:
    """`--workers 2` against one worker on the same load: fan-out deliveries/s and POST
    items/s with no readers, the ratios from the workers table."""
    scen = res.scen
    w_cells, w_better = [], []
    for s in sorted((s for s in scen if res.has(s, "ticker", "ticker-w2")), key=scen_sort):
        a1, a2 = figures(scen[s]["ticker"][1]), figures(scen[s]["ticker-w2"][1])
        if s.startswith("POST-"):
            if a1.clients != 0:
                continue
            v1, v2, unit = a1.pub_s, a2.pub_s, "items/s"
        else:
            v1, v2, unit = a1.deliv_s, a2.deliv_s, "deliveries/s"
        r = ratio(v2, v1)
        if r is None:
            continue
        w_cells.append(f"{s}: {f(v2)} vs {f(v1)} {unit} ({f(r, 2)}×)")
        if r > 1.0:
            w_better.append(f"{s} {unit} {f(r, 2)}×")
    if not w_cells:
        return []
    return [
        TargetRow(
            "`ticker serve --workers 2` delivers more than one worker on the same load",
            "<br>".join(w_cells),
            "1 worker, same load (2 workers ÷ 1)",
            "yes (" + ", ".join(w_better) + ")" if w_better else "no",
        )
    ]


TARGET_ROWS = (target_cpu, target_memory, target_loss, target_latency, target_post, target_workers)


def section_targets(res: Results) -> list[str]:
    """The issue's targets, one row each, with whether they were met."""
    rows = [row for target in TARGET_ROWS for row in target(res)]
    if not rows:
        return []  # none of the scenarios they are about ran
    return ["## Targets (issue #5)", "", *TARGETS.render(rows), ""]
