"""The page's table sections: a title, what the table shows, the table (declared in
bench/report/tables.py) with its rows chosen here, and notes on runs that need one."""

from __future__ import annotations

from dataclasses import replace

from bench.report.figures import f, figures, ratio, storm_figures
from bench.report.names import of_kind, peer_name, scen_sort
from bench.report.results import JSON, Results
from bench.report.rows import Compared, PeerRow, PostRow, peer_rows
from bench.report.tables import (
    BURST,
    FANOUT,
    IDLE,
    POST,
    RATIOS,
    STORM_CONNECT,
    STORM_LIVE,
    WORKER_METRICS,
    WORKERS,
    ratios_table,
)


def section_idle(res: Results) -> list[str]:
    """S3: memory per idle reader."""
    s3s = of_kind(res.scen, "S3")
    if not s3s:
        return []
    return [
        "## Idle readers (S3): memory per connection",
        "",
        *IDLE.render(peer_rows(res, s3s)),
        "",
    ]


def section_fanout(res: Results) -> list[str]:
    """S1/S2: the fan-out table, with notes on runs that need one."""
    fan = of_kind(res.scen, "S1", "S2")
    if not fan:
        return []
    rows = peer_rows(res, fan)
    out = [
        "## Fan-out (S1: 20 items/s for 20 s; S2: 2,000 items as fast as possible, 1,000 readers)",
        "",
        *FANOUT.render(rows),
        "",
    ]
    notes = [n for r in rows for n in _fanout_notes(r)]
    if notes:
        out += [f"- {n}" for n in notes] + [""]
    return out


def _fanout_notes(r: PeerRow) -> list[str]:
    x, name, rate = r.x, peer_name(r.peer), r.run["params"].get("rate") or 0
    notes = []
    if rate and x.pub_s is not None and x.pub_s < 0.9 * rate and x.lost:
        notes.append(
            f"{name} {r.scenario}: the publisher was held back to {f(x.pub_s)}/s, so `lost` "
            "counts items not yet published when the run's time bound hit, not items dropped."
        )
    if x.connected == 0:
        notes.append(f"{name} {r.scenario}: no reader connected within the bound.")
    elif x.cutoffs and x.connected is not None and x.cutoffs >= x.connected:
        notes.append(
            f"{name} {r.scenario}: the server ended every stream; the load generator does not "
            "reconnect, so everything after that counts as lost (a browser would resume with "
            "Last-Event-ID)."
        )
    return notes


def section_storm(res: Results) -> list[str]:
    """C-N: the connection storm, its connect cost and its delay to the residents."""
    storms = of_kind(res.scen, "C-")
    if not storms:
        return []
    d0 = next(iter(res.scen[storms[0]].values()))[1]
    x0 = storm_figures(d0)
    params = d0["params"]
    preload = (
        f"{f(x0.preload)} items are published (a new ticker reader is sent the current items, "
        "as in run 2; nchan sends new readers only new messages); "
        if x0.preload
        else "with no item on the ticker, "
    )
    cpu_source = (
        "`/proc/PID/task/TID/schedstat`, ns" if x0.cpu_source == "schedstat" else "`/proc/PID/stat`"
    )
    rows = peer_rows(res, storms)
    return [
        "## Connection storm (C-N): N readers connecting at once",
        "",
        f"Two runs per server, each on a freshly started one, with {f(x0.residents)} resident "
        "readers. N storm readers come from a second load generator whose connects are all "
        "in flight together (`--connect-concurrency` = N ÷ its processes).",
        "",
        "1. The residents connect; "
        + preload
        + "the N connect onto the residents with nothing more published, stay "
        f"{f(x0.idle_hold_s, 0)} s and leave; once the server is idle again, "
        f"{f(params['count'])} items at {f(params['rate'], 0)}/s (the S1 publisher): "
        "the residents' latency **without a storm**.",
        f"2. The same items to the same number of residents; {f(x0.at_s, 0)} s into publishing "
        f"the N connect, stay {f(x0.hold_s, 0)} s after the last of them connected, and "
        "leave (RST) while publishing goes on: the residents' latency **with the storm**.",
        "",
        "- **µs / connecting reader** (run 1) = the server's CPU (every thread of its process "
        "tree: "
        + cpu_source
        + ", sampled every 20 ms) from just before the storm's load generator starts to 0.5 s "
        'after its last reader had the response headers ("window"), minus the idle rate of '
        "the second before × the window, ÷ N. Work done after the headers (such as sending "
        "ticker's current items) falls in the window.",
        "- **refused** = failed connects + answers that were not a 200 event stream + streams "
        "the server ended (over a cap ticker answers 200 with a retry hint and ends the "
        "body); the goal's figure adds both storms. **listen overflows**: the kernel's "
        "`TcpExt ListenOverflows` during the storm (machine-wide; a full accept queue drops "
        "the SYN and the client sends it again a second later, which shows in connect s).",
        "- Run 2's **µs / connecting reader while publishing** = (CPU from the storm's first "
        'sample to its "all connected" sample − the residents\' CPU rate from 1 s into '
        "publishing to the storm × that window) ÷ N. It also holds the items sent to storm "
        "readers that had already connected.",
        "- **Residents' latency**: p50 / p99 / max over all their deliveries of each run; "
        "**delay** = with the storm − without. The storm takes a few seconds of the "
        f"{f(params.get('pub_time_s'), 0)} s of publishing, so it shows in the p99 and "
        "max more than in the p50.",
        "",
        *STORM_CONNECT.render(rows),
        "",
        *STORM_LIVE.render(rows),
        "",
    ]


def section_burst(res: Results) -> list[str]:
    """B-N: single urgent items to many idle readers."""
    bursts = of_kind(res.scen, "B-")
    if not bursts:
        return []
    params = next(iter(res.scen[bursts[0]].values()))[1]["params"]
    gap = 1.0 / params["rate"] if params.get("rate") else None
    return [
        "## Burst (B-N): one urgent item at a time to N idle readers",
        "",
        f"N readers connect and sit idle for {f(params.get('idle_before'), 0)} s; then "
        f"{f(params['count'])} single items are published, each alone, {f(gap, 0)} s apart. "
        "One load generator holds the readers for all the items, so its figures are over "
        "every delivery of every item: **max** is the time until the last reader had the "
        "worst of the items (the goal's figure), p50 / p99 over all deliveries. The time of "
        "each item on its own is not measured.",
        "",
        *BURST.render(peer_rows(res, bursts)),
        "",
    ]


def section_ratios(res: Results) -> list[str]:
    """ticker divided by each peer."""
    scen = res.scen
    others = [p for p in ["nchan", "nchan2", "fanout", "naive"] if any(p in scen[s] for s in scen)]
    if not others or not any("ticker" in scen[s] for s in scen):
        return []
    rows = []
    for spec in RATIOS:
        for s in of_kind(scen, *spec.kinds):
            if "ticker" not in scen[s] or not any(p in scen[s] for p in others):
                continue
            t = spec.get(figures(scen[s]["ticker"][1]))
            cells = [
                ratio(t, spec.get(figures(scen[s][p][1]))) if p in scen[s] else None for p in others
            ]
            rows.append((spec.label.format(s=s), cells))
    return [
        "## ticker relative to each peer (ticker ÷ peer; below 1 is better for ticker)",
        "",
        *ratios_table(others).render(rows),
        "",
    ]


def section_post(res: Results) -> list[str]:
    """The publish API table."""
    posts = [
        d
        for d in res.runs.values()
        if d["scenario"].startswith("POST-") or "(POST)" in d["scenario"]
    ]
    if not posts:
        return []
    rows = [_post_row(d) for d in sorted(posts, key=lambda d: (d.get("peer", ""), d["scenario"]))]
    settings = res.meta["settings"]
    return [
        "## Publish API: `POST /channels/en/items`",
        "",
        f"`bench/harness/post_load.py`: {settings['post_count']:,} POSTs over "
        f"{settings['post_conns']} keep-alive connections, each sending its next request when "
        "the previous reply is in (closed loop), bearer token, body "
        '`{"headline": "Load seq=N ts=T run=ID"}`. Readers attached to `en` receive every item '
        "plus the `remove` (expire) that pushes the oldest of the 20 live items off; with "
        f"{settings['post_track_every']}× sampling in the load generator (every "
        f"{settings['post_track_every']}th reader fully parsed, the others count events) to "
        "keep the client's CPU down. The default write limit (300/min per token, burst 60) "
        "was raised for this test, or every POST after the 60th would be a 429; the limiter "
        "itself still runs.",
        "",
        *POST.render(rows),
        "",
    ]


def _post_row(d: JSON) -> PostRow:
    x = figures(d)
    pub = d.get("publisher") or {}
    sent = pub.get("sent")
    ok = pub.get("ok", sent)
    srv_cpu = x.srv_cpu_run
    split = d.get("server_cpu_split")
    if srv_cpu is None and split:
        srv_cpu = split["user_s"] + split["sys_s"]
    if d["params"]["clients"] and ok is not None and x.connected:
        # Readers can only get what was published (a run may stop at its time bound).
        expected = ok * x.connected
        x = replace(x, expected=expected, lost=max(0, expected - (x.deliveries or 0)))
    return PostRow(d, x, sent, ok, srv_cpu)


def section_workers(res: Results) -> list[str]:
    """Two workers against one, metric by metric."""
    scen = res.scen
    w2 = [s for s in scen if "ticker-w2" in scen[s]]
    if not w2:
        return []
    rows = []
    for s in sorted(w2, key=scen_sort):
        if "ticker" not in scen[s]:
            continue
        a1, a2 = figures(scen[s]["ticker"][1]), figures(scen[s]["ticker-w2"][1])
        is_post = s.startswith("POST")
        for m in WORKER_METRICS:
            v1, v2 = m.get(a1), m.get(a2)
            if not (m.post if is_post else m.fanout) or (v1 is None and v2 is None):
                continue
            rows.append(Compared(s, m.label, v1, v2, ratio(v2, v1)))
    return [
        "## `ticker serve --workers 2` vs 1 worker (same load)",
        "",
        *WORKERS.render(rows),
        "",
        "With 2 workers each process runs its own Redis reader and hub; the kernel spreads "
        "the readers' connections over the two processes. The load generator still "
        "shares the same 2 cores.",
        "",
    ]
