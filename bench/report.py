#!/usr/bin/env python3
# ruff: noqa: E501  (the long lines are markdown table rows; wrapping them hurts more than it helps)
"""Results folder -> docs/performance.md. Called by bench/run at the end of a full or
--quick run; by hand: `bench/run --report bench/results/<folder>`.

Everything in the generated page comes from the JSON in that folder, except the
analysis in bench/findings.md, which is included verbatim (it says which run it was
written for).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from profile_summary import summarize  # noqa: E402

PEER_ORDER = [
    "ticker",
    "ticker-asgi",
    "nchan",
    "nchan2",
    "fanout",
    "naive",
    "ticker-w2",
]
PEER_NAMES = {
    "ticker": "ticker (1 worker)",
    "ticker-asgi": "ticker, TICKER_DIRECT_WRITES=false (ASGI sends only)",
    "ticker-w2": "ticker --workers 2",
    "nchan": "nginx + nchan (1 worker)",
    "nchan2": "nginx + nchan (2 workers)",
    "fanout": "fanout peer (shared XREAD + queues, sse-starlette)",
    "naive": "naive peer (XREAD per reader, sse-starlette)",
}


def load(folder: Path):
    runs = {}
    for p in sorted(folder.glob("*.json")):
        if p.name in ("meta.json", "floors.json"):
            continue
        d = json.loads(p.read_text())
        runs[p.stem] = d
    meta = json.loads((folder / "meta.json").read_text())
    floors = (
        json.loads((folder / "floors.json").read_text())
        if (folder / "floors.json").exists()
        else None
    )
    return meta, runs, floors


def f(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def metrics(d):
    """The figures the issue asks for, from one run's JSON."""
    s = d.get("subscribers") or {}
    srv = s.get("server") or {}
    lat = s.get("latency_ms") or {}
    pub = d.get("publisher") or {}
    deliv = s.get("deliveries") or 0
    cpu_run = srv.get("cpu_s_run")
    aux = s.get("aux") or {}
    redis_cpu = sum(v.get("cpu_s", 0) for v in aux.values()) if aux else None
    return {
        "clients": d["params"].get("clients"),
        "connected": s.get("clients_connected"),
        "connect_s": s.get("connect_time_s"),
        "expected": s.get("messages_expected"),
        "deliveries": deliv,
        "lost": s.get("lost"),
        "dups": s.get("duplicates"),
        "ooo": s.get("out_of_order"),
        "cutoffs": s.get("disconnects"),
        "connect_errors": sum((s.get("connect_errors") or {}).values())
        + sum((s.get("bad_status") or {}).values()),
        "p50": lat.get("p50"),
        "p99": lat.get("p99"),
        "max": lat.get("max"),
        "deliv_s": s.get("deliveries_per_s"),
        "pub_s": pub.get("rate_achieved"),
        "pub_p99": (pub.get("send_ms") or {}).get("p99"),
        "pub_p50": (pub.get("send_ms") or {}).get("p50"),
        "srv_cpu_run": cpu_run,
        "srv_cpu_connect": srv.get("cpu_s_connect"),
        "us_per_deliv": (cpu_run / deliv * 1e6) if (cpu_run is not None and deliv) else None,
        "us_per_deliv_redis": ((cpu_run + (redis_cpu or 0)) / deliv * 1e6)
        if (cpu_run is not None and deliv)
        else None,
        "redis_cpu": redis_cpu,
        "client_cpu": s.get("client_cpu_s"),
        "rss_end": srv.get("rss_mb_end"),
        "rss_before": srv.get("rss_mb_before"),
        "rss_conn_kb": srv.get("rss_per_conn_kb"),
        "pss_conn_kb": srv.get("pss_per_conn_kb"),
        "stop": ",".join(s.get("stop_reasons") or []),
        "bytes_per_deliv": (s.get("bytes_received", 0) / deliv) if deliv else None,
        "sys_pct": _sys_pct(d.get("server_cpu_split")),
        "storm_us": ((d.get("storm") or {}).get("idle") or {}).get("connect_us_per_reader"),
    }


def _sys_pct(split):
    if not split:
        return None
    tot = split.get("user_s", 0) + split.get("sys_s", 0)
    return 100.0 * split["sys_s"] / tot if tot > 0 else None


def by_scenario(runs):
    out = {}
    for key, d in runs.items():
        peer = d.get("peer") or d.get("label")
        out.setdefault(d["scenario"], {})[peer] = (key, d)
    return out


def order_peers(peers):
    return sorted(peers, key=lambda p: PEER_ORDER.index(p) if p in PEER_ORDER else 99)


def scen_sort(s):
    kind, _, n = s.partition("-")
    return (
        {"S3": 0, "S1": 1, "S2": 2, "B": 3, "C": 4}.get(kind, 5),
        int(n.split()[0]) if n[:1].isdigit() else 0,
        s,
    )


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


@dataclass
class Report:
    """One results folder (plus any follow-up runs merged in) and the page's lines."""

    folder: Path
    merge: list[Path]
    meta: dict
    runs: dict
    floors: dict | None
    reruns: list = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @cached_property
    def scen(self):
        return by_scenario(self.runs)

    @property
    def regen(self):
        return f"bench/run --report bench/results/{self.folder.name}" + "".join(
            f" --merge bench/results/{m.name}" for m in self.merge
        )

    def get(self, peer, s):
        d = self.scen.get(s, {}).get(peer)
        return metrics(d[1]) if d else None


def load_report(folder: Path, merge=()) -> Report:
    """The folder's runs, with the cells of follow-up runs added or replacing its own."""
    folder = Path(folder).resolve()
    merge = [Path(m).resolve() for m in (merge or ())]
    meta, runs, floors = load(folder)
    reruns: list[tuple[str, dict]] = []
    for mdir in merge or ():
        mmeta, mruns, _ = load(Path(mdir))
        for k, d in mruns.items():
            d["_rerun"] = {
                "folder": Path(mdir).name,
                "argv": " ".join(mmeta["argv"]),
                "started": mmeta["started"],
                "commit": (mmeta["machine"].get("git") or {}).get("commit", "")[:12],
            }
            runs[k] = d
            # A cell measured again in a later --merge replaces the earlier one.
            reruns = [r for r in reruns if r[0] != k] + [(k, d["_rerun"])]
    return Report(folder, merge, meta, runs, floors, reruns)


def fanout_scenarios(scen):
    """S1 and S2, in table order."""
    return sorted([s for s in scen if s.startswith(("S1", "S2"))], key=scen_sort)


def idle_scenarios(scen):
    """S3, in table order."""
    return sorted([s for s in scen if s.startswith("S3")], key=scen_sort)


def storm_scenarios(scen):
    """C-N, in table order."""
    return sorted([s for s in scen if s.startswith("C-")], key=scen_sort)


def burst_scenarios(scen):
    """B-N, in table order."""
    return sorted([s for s in scen if s.startswith("B-")], key=scen_sort)


def size(s):
    """The N of a scenario name such as `C-2000` or `S1-5000 (tag)`; None without one."""
    n = s.partition("-")[2].split()[0] if "-" in s else ""
    return int(n) if n.isdigit() else None


def _refused(ss):
    """A storm's readers that did not get a stream: failed connects, answers that were not
    a 200 event stream, streams the server ended. None without a result."""
    if "clients_connected" not in ss:
        return None
    return (
        sum((ss.get("connect_errors") or {}).values())
        + sum((ss.get("bad_status") or {}).values())
        + (ss.get("disconnects") or 0)
    )


def storm_metrics(d):
    """A C-N run: both storms' figures and the residents with and without the storm."""
    st = d.get("storm") or {}
    idle, live = st.get("idle") or {}, st.get("live") or {}
    si, sl = idle.get("subscribers") or {}, live.get("subscribers") or {}
    base = (d.get("baseline") or {}).get("subscribers") or {}
    with_ = d.get("subscribers") or {}
    lat0, lat1 = base.get("latency_ms") or {}, with_.get("latency_ms") or {}

    def diff(k):
        a, b = lat1.get(k), lat0.get(k)
        return None if a is None or b is None else a - b

    r_idle, r_live = _refused(si), _refused(sl)
    return {
        "residents": d["params"].get("residents", d["params"].get("clients")),
        "storm": st.get("clients"),
        "at_s": live.get("at_s"),
        "hold_s": live.get("hold_s"),
        "idle_hold_s": idle.get("hold_s"),
        "preload": (idle.get("preload") or {}).get("sent"),
        "refused": None if r_idle is None and r_live is None else (r_idle or 0) + (r_live or 0),
        # the storm onto idle residents: the connect CPU
        "idle_connected": si.get("clients_connected"),
        "idle_refused": r_idle,
        "idle_cutoffs": si.get("disconnects"),
        "idle_connect_s": si.get("connect_time_s"),
        "idle_overflows": (idle.get("listen") or {}).get("ListenOverflows"),
        "idle_window_s": idle.get("window_s"),
        "idle_cpu_window_s": idle.get("cpu_window_s"),
        "idle_rate": idle.get("idle_rate"),
        "us": idle.get("connect_us_per_reader"),
        "cpu_source": idle.get("cpu_source") or live.get("cpu_source"),
        # the storm while the residents get their items
        "live_connected": sl.get("clients_connected"),
        "live_refused": r_live,
        "live_cutoffs": sl.get("disconnects"),
        "live_connect_s": sl.get("connect_time_s"),
        "live_overflows": (live.get("listen") or {}).get("ListenOverflows"),
        "live_window_s": live.get("window_s"),
        "live_cpu_window_s": live.get("cpu_window_s"),
        "rate_before": live.get("rate_before"),
        "us_live": live.get("us_per_reader"),
        "base": lat0,
        "with": lat1,
        "delay_p50": diff("p50"),
        "delay_p99": diff("p99"),
        "delay_max": diff("max"),
        "lost": _sum_none(base.get("lost"), with_.get("lost")),
        "dups": _sum_none(base.get("duplicates"), with_.get("duplicates")),
        "ooo": _sum_none(base.get("out_of_order"), with_.get("out_of_order")),
        "res_cutoffs": _sum_none(base.get("disconnects"), with_.get("disconnects")),
    }


def _sum_none(*v):
    return None if any(x is None for x in v) else sum(v)


def section_header(rep: Report) -> None:
    """Title, provenance, the subset warning, the follow-up runs."""
    add = rep.lines.append
    meta = rep.meta
    mode = rep.meta["mode"]
    folder = rep.folder
    reruns = rep.reruns
    regen = rep.regen
    add("# Performance")
    add("")
    add(
        f"_Generated by `bench/run` from `bench/results/{folder.name}/` (git-ignored raw JSON). "
        "Do not edit by hand: change `bench/report.py` or `bench/findings.md` and run "
        f"`{regen}`._"
    )
    add("")
    if mode != "full":
        add(
            f"> **This page shows the `{mode}` subset** ({', '.join(meta['peers'])}; "
            f"{', '.join(meta['scenarios'])}; extras: {', '.join(meta['extras']) or 'none'}), "
            "not the full matrix. Run `bench/run` (the matrix, then the ticker extras, on an otherwise idle "
            "machine) for every figure."
        )
        add("")
    add(
        f"Run: {meta['started']} → {meta.get('finished', '?')} ({meta.get('elapsed_min', '?')} min"
        + (f"; the matrix alone {meta['matrix_min']} min" if meta.get("matrix_min") else "")
        + f"), command `{' '.join(meta['argv'])}`."
    )
    add("")
    if reruns:
        add(
            "Cells from follow-up runs (added, or replacing the first run's cell; why: see "
            '"Notes on this run" at the end of the analysis):'
        )
        add("")
        for k, rr in sorted(reruns, key=lambda kr: kr[0]):
            add(
                f"- `{k}`: `{rr['argv']}` ({rr['started']}, ticker at `{rr['commit']}`, "
                f"`bench/results/{rr['folder']}/`)"
            )
        add("")


def target_cpu(rep: Report) -> None:
    """Server CPU per delivery against nchan, at the largest S1 and at 1,000."""
    add = rep.lines.append
    get = rep.get
    scen = rep.scen
    s_big = max(
        (s for s in scen if s.startswith("S1-") and "ticker" in scen[s] and "nchan" in scen[s]),
        key=lambda s: (
            int(s.split("-")[1].split()[0]) if s.split("-")[1].split()[0].isdigit() else 0
        ),
        default=None,
    )
    if s_big:
        t, n = get("ticker", s_big), get("nchan", s_big)
        r = ratio(t["us_per_deliv"], n["us_per_deliv"])
        met = "yes" if r is not None and r <= 1.5 else "no"
        caveat = ""
        if (t["p50"] or 0) > 10 * (n["p50"] or 1e9) or (n["pub_s"] or 20) < 18:
            met += " on paper (saturated: see the analysis below)"
            caveat = (
                f" — ticker p50 {f(t['p50'])} ms behind, nchan p50 {f(n['p50'])} ms with its "
                f"publisher slowed to {f(n['pub_s'])}/s"
            )
        add(
            f"| server CPU per delivery at {s_big.split('-')[1]} readers ≤ 1.5× nchan's | "
            f"{f(t['us_per_deliv'])} µs | nchan {f(n['us_per_deliv'])} µs (ratio {f(r, 2)}×){caveat} | {met} |"
        )
    if (
        s_big
        and s_big != "S1-1000"
        and "S1-1000" in scen
        and "ticker" in scen["S1-1000"]
        and "nchan" in scen["S1-1000"]
    ):
        t, n = get("ticker", "S1-1000"), get("nchan", "S1-1000")
        r = ratio(t["us_per_deliv"], n["us_per_deliv"])
        add(
            f"| the same at 1,000 readers, where both keep up (no coalescing) | {f(t['us_per_deliv'])} µs | "
            f"nchan {f(n['us_per_deliv'])} µs (ratio {f(r, 2)}×) | {'yes' if r is not None and r <= 1.5 else 'no'} |"
        )


def target_memory(rep: Report) -> None:
    """Idle memory per reader."""
    add = rep.lines.append
    get = rep.get
    scen = rep.scen
    s3 = next(
        (s for s in sorted(scen, key=scen_sort) if s.startswith("S3") and "ticker" in scen[s]), None
    )
    if s3:
        t = get("ticker", s3)
        n = get("nchan", s3)
        add(
            f"| idle memory ≤ 20 KB per reader ({s3}) | {f(t['rss_conn_kb'])} KB (RSS) | "
            f"nchan {f(n['rss_conn_kb']) if n else '–'} KB | "
            f"{'yes' if t['rss_conn_kb'] is not None and t['rss_conn_kb'] <= 20 else 'no'} |"
        )


def target_loss(rep: Report) -> None:
    """Nothing lost, duplicated or out of order."""
    add = rep.lines.append
    runs = rep.runs
    tick_runs = [
        metrics(d)
        for k, d in runs.items()
        if (d.get("peer") == "ticker" and d["scenario"].startswith(("S1", "S2")))
    ]
    if tick_runs:
        clean, bad = [], []
        for _k, d in sorted(runs.items(), key=lambda kd: scen_sort(kd[1]["scenario"])):
            if d.get("peer") != "ticker" or not d["scenario"].startswith(("S1", "S2")):
                continue
            x = metrics(d)
            gaps = (d.get("subscribers") or {}).get("gap_events") or 0
            if x["lost"] or x["dups"] or x["ooo"] or x["cutoffs"] or gaps:
                bad.append(
                    f"{d['scenario']}: lost {f(x['lost'])}, dup {f(x['dups'])}, out of order "
                    f"{f(x['ooo'])}, gaps {f(gaps)}, cut-offs {f(x['cutoffs'])}"
                )
            else:
                clean.append(d["scenario"])
        text = "; ".join(
            ([f"{', '.join(clean)}: 0 lost, 0 dup, in order, no cut-off"] if clean else []) + bad
        )
        add(
            f"| 0 lost / duplicated, in order | {text} | | {'yes' if not bad else 'no (see the analysis below)'} |"
        )


def target_latency(rep: Report) -> None:
    """p99 latency at 1,000 readers against nchan."""
    add = rep.lines.append
    get = rep.get
    scen = rep.scen
    if "S1-1000" in scen and "ticker" in scen["S1-1000"] and "nchan" in scen["S1-1000"]:
        t, n = get("ticker", "S1-1000"), get("nchan", "S1-1000")
        ok = t["p99"] is not None and n["p99"] is not None and t["p99"] <= n["p99"]
        add(
            f"| p99 latency at 1,000 readers, 20 items/s ≤ nchan's | {f(t['p99'])} ms | "
            f"nchan {f(n['p99'])} ms | {'yes' if ok else 'no'} |"
        )


def target_post(rep: Report) -> None:
    """The publish API's rate and p99, per worker configuration."""
    add = rep.lines.append
    scen = rep.scen
    # The publish-API target, for 1 worker and (with the workers extra) `--workers 2` on
    # the same POST load: met if either configuration meets both numbers.
    post_scen = sorted(
        (
            s
            for s in scen
            if s.startswith("POST-") and ("ticker" in scen[s] or "ticker-w2" in scen[s])
        ),
        key=lambda s: (
            next(scen[s][p][1] for p in ("ticker", "ticker-w2") if p in scen[s])["params"][
                "clients"
            ],
            s,
        ),
    )
    for s in post_scen:
        configs = [
            (lab, scen[s][p][1])
            for p, lab in (("ticker", "1 worker"), ("ticker-w2", "`--workers 2`"))
            if p in scen[s]
        ]
        named = [lab for lab, _ in configs] != ["1 worker"]  # 1 worker alone: as before
        cells, ok_labs = [], []
        for lab, d in configs:
            x = metrics(d)
            if (x["pub_s"] or 0) >= 2000 and (x["pub_p99"] or 1e9) < 20:
                ok_labs.append(lab)
            cells.append(
                (f"{lab}: " if named else "") + f"{f(x['pub_s'])} items/s, p99 {f(x['pub_p99'])} ms"
            )
        if not ok_labs:
            met = "no"
        elif not named:
            met = "yes"
        else:
            met = f"yes ({' and '.join(ok_labs)})"
        add(
            f"| POST ≥ 2,000 items/s with p99 < 20 ms, {configs[0][1]['params']['clients']} readers attached | "
            f"{'<br>'.join(cells)} | | {met} |"
        )


def target_workers(rep: Report) -> None:
    """`--workers 2` against one worker on the same load."""
    add = rep.lines.append
    get = rep.get
    scen = rep.scen
    # `--workers 2` vs 1 on the same load: fan-out deliveries/s and POST items/s with no
    # readers, the ratios from the workers table below.
    w_cells, w_better = [], []
    for s in sorted(
        (s for s in scen if "ticker" in scen[s] and "ticker-w2" in scen[s]), key=scen_sort
    ):
        a1, a2 = get("ticker", s), get("ticker-w2", s)
        if s.startswith("POST-"):
            if a1["clients"] != 0:
                continue
            key, unit = "pub_s", "items/s"
        else:
            key, unit = "deliv_s", "deliveries/s"
        r = ratio(a2[key], a1[key])
        if r is None:
            continue
        w_cells.append(f"{s}: {f(a2[key])} vs {f(a1[key])} {unit} ({f(r, 2)}×)")
        if r > 1.0:
            w_better.append(f"{s} {unit} {f(r, 2)}×")
    if w_cells:
        add(
            "| `ticker serve --workers 2` delivers more than one worker on the same load | "
            f"{'<br>'.join(w_cells)} | 1 worker, same load (2 workers ÷ 1) | "
            f"{'yes (' + ', '.join(w_better) + ')' if w_better else 'no'} |"
        )


def section_machine(rep: Report) -> None:
    """The machine, the software versions, how ticker ran."""
    add = rep.lines.append
    meta = rep.meta
    m = rep.meta["machine"]
    v = rep.meta["machine"]["versions"]
    add("## Machine and software")
    add("")
    add(
        f"- {m['nproc']} CPUs, {m['model']}, {m['mem_gb']} GB RAM, kernel {m['kernel']}, "
        f"fd limit {m['fd_soft']} (hard {m['fd_hard']}), somaxconn {m['somaxconn']}; "
        f"load average at start {' '.join(m['loadavg_start'])}."
    )
    add(
        f"- Python {v.get('python')}, uvicorn {v.get('uvicorn')} (httptools {v.get('httptools')}, "
        f"uvloop {v.get('uvloop')}), starlette {v.get('starlette')}, sse-starlette {v.get('sse-starlette')}, "
        f"redis-py {v.get('redis')}, pydantic {v.get('pydantic')}; redis-server {v.get('redis-server')}; "
        f"nginx {v.get('nginx')} + nchan {v.get('nchan')}; py-spy {v.get('py-spy')}."
    )
    g = m.get("git", {})
    dirty = g.get("dirty_files") or []
    add(
        f"- ticker at commit `{(g.get('commit') or '?')[:12]}`"
        + (
            f" **with uncommitted changes** in {len(dirty)} file(s) under `ticker/` "
            f"(diff sha256 {g.get('ticker_diff_sha256')})"
            if dirty
            else " (clean tree)"
        )
        + "."
    )
    if meta.get("ticker_serve_cmd"):
        add(
            f"- ticker ran as `{meta['ticker_serve_cmd'].replace(str(BENCH.parent) + '/', '')}` with "
            "`TICKER_REDIS_URL` (its own throw-away redis-server, no persistence), "
            "`TICKER_KEY_PREFIX=bench`, `TICKER_WRITE_RATE_PER_MINUTE=60000000`, "
            "`TICKER_WRITE_BURST=1000000` (see the publish-API section); all other settings default "
            "(`TICKER_SUBSCRIBER_BUFFER=1000`, heartbeat 15 s)."
        )
    add("")
    add(
        "Everything ran on loopback on this one machine: the load generator (2 processes, "
        "Python + uvloop) shares the 2 cores with the server, so read the client's CPU next to "
        "the server's. Other people's test suites were running on the box until the "
        "go-ahead; the load average above says how quiet it was when this run started."
    )
    add("")


def section_method(rep: Report) -> None:
    """How to read the tables."""
    add = rep.lines.append
    meta = rep.meta
    add("## How to read the tables")
    add("")
    add(
        "- **Same harness, same payload for every peer.** Each event's data is the same item "
        "JSON ticker streams (`bench/harness/publish.py:item_json`, ~450 bytes per SSE frame); "
        "the headline carries `seq=N ts=T run=ID` and the load generator "
        "(`bench/harness/sse_load.py --text-markers`, a verbatim copy of the shared harness) "
        "counts only this run's events, per reader."
    )
    add(
        "- **Publishing.** nchan: HTTP `POST /pub`. naive/fanout: `XADD` of the same JSON. ticker "
        "in S1/S2: `XADD` in ticker's own stream-entry format (`v=1`, `type=item`, `uri`, `item`, "
        "exact `MAXLEN 1000`), so ticker's server CPU is fan-out only, like the Python peers'; "
        "the publish API is measured on its own below (a `POST` also costs the server the API "
        "work, and with 20 items on the ticker each new item pushes one out, i.e. a second "
        "`remove` event per item)."
    )
    add(
        "- **Server CPU per delivery** = server CPU (utime+stime of the whole process tree, "
        'from /proc) from "all readers connected" to the end of the run ÷ deliveries of this '
        "run's events. Redis CPU is shown separately (for the naive peer it is real per-reader "
        "work)."
    )
    add(
        "- **In kernel** = the share of the server's CPU spent in system calls (stime ÷ "
        "utime+stime from /proc, over the publish and drain window): mostly `write()` on the "
        "sockets."
    )
    add(
        "- **Idle RSS per reader** = (RSS after the 10 s hold − RSS before connecting) ÷ readers, "
        "on a freshly started server (S3 runs first). Kernel socket buffers are not in RSS."
    )
    add(
        "- **Latency** = receive time − the publish timestamp in the headline (same clock). "
        "**Lost** = expected − unique events per reader, summed (it includes events still "
        "queued when the run's time limit hit: see `stop`). **Cut-offs** = streams the server "
        "ended (ticker cuts a reader off when it is more than 1,000 events behind). "
        "**Out of order** is only meaningful with one sequential publisher (S1, S2)."
    )
    add(
        f"- Bounds: readers connect within {meta['settings']['connect_timeout']:.0f} s; after publishing "
        f"ends they get {meta['settings']['drain_max']:.0f} s more (+10 s idle timeout), then the run stops "
        "(`stop` = `max-time`); S1 at 5,000–10,000 readers asks for 100k–200k deliveries/s, above "
        "what this 2-core box can do with any server (see floors): there it is a saturation "
        "test."
    )
    add("")


def section_idle(rep: Report) -> None:
    """S3: memory per idle reader."""
    add = rep.lines.append
    scen = rep.scen
    s3s = idle_scenarios(scen)
    if s3s:
        add("## Idle readers (S3): memory per connection")
        add("")
        add(
            "| scenario | peer | connected | connect s | server CPU to connect s | RSS before MB | RSS after hold MB | **RSS KB / reader** | PSS KB / reader |"
        )
        add("|---|---|---|---|---|---|---|---|---|")
        for s in s3s:
            for p in order_peers(scen[s]):
                x = metrics(scen[s][p][1])
                srv = (scen[s][p][1].get("subscribers") or {}).get("server") or {}
                hold = (srv.get("hold") or {}).get("rss_kb")
                add(
                    f"| {s} | {PEER_NAMES.get(p, p)} | {f(x['connected'])}/{f(x['clients'])} | {f(x['connect_s'])} | "
                    f"{f(x['srv_cpu_connect'], 2)} | {f(x['rss_before'])} | {f(hold / 1024 if hold else None)} | "
                    f"**{f(x['rss_conn_kb'])}** | {f(x['pss_conn_kb'])} |"
                )
        add("")


def section_fanout(rep: Report) -> None:
    """S1/S2: the fan-out table, with notes on runs that need one."""
    add = rep.lines.append
    scen = rep.scen
    fan = fanout_scenarios(scen)
    if fan:
        add(
            "## Fan-out (S1: 20 items/s for 20 s; S2: 2,000 items as fast as possible, 1,000 readers)"
        )
        add("")
        add(
            "| scenario | peer | connected | deliveries / expected | lost | dup | out of order | cut-offs | p50 ms | p99 ms | max ms | deliveries/s | publish/s | server CPU s | **µs / delivery** | in kernel | redis CPU s | client CPU s | RSS end MB | stop |"
        )
        add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for s in fan:
            for p in order_peers(scen[s]):
                x = metrics(scen[s][p][1])
                add(
                    f"| {s} | {PEER_NAMES.get(p, p)} | {f(x['connected'])} | {f(x['deliveries'])} / {f(x['expected'])} | "
                    f"{f(x['lost'])} | {f(x['dups'])} | {f(x['ooo'])} | {f(x['cutoffs'])} | {f(x['p50'])} | "
                    f"{f(x['p99'])} | {f(x['max'])} | {f(x['deliv_s'])} | {f(x['pub_s'])} | {f(x['srv_cpu_run'], 2)} | "
                    f"**{f(x['us_per_deliv'])}** | {f(x['sys_pct'], 0) + '%' if x['sys_pct'] is not None else '–'} | {f(x['redis_cpu'], 2)} | {f(x['client_cpu'], 1)} | {f(x['rss_end'])} | {x['stop']} |"
                )
        add("")
        notes = []
        for s in fan:
            for p in order_peers(scen[s]):
                d = scen[s][p][1]
                x = metrics(d)
                rate = d["params"].get("rate") or 0
                if rate and x["pub_s"] is not None and x["pub_s"] < 0.9 * rate and x["lost"]:
                    notes.append(
                        f"{PEER_NAMES.get(p, p)} {s}: the publisher was held back to "
                        f"{f(x['pub_s'])}/s, so `lost` counts items not yet published when the "
                        "run's time bound hit, not items dropped."
                    )
                if x["connected"] == 0:
                    notes.append(
                        f"{PEER_NAMES.get(p, p)} {s}: no reader connected within the bound."
                    )
                elif x["cutoffs"] and x["cutoffs"] >= x["connected"]:
                    notes.append(
                        f"{PEER_NAMES.get(p, p)} {s}: the server ended every stream; the load "
                        "generator does not reconnect, so everything after that counts as lost "
                        "(a browser would resume with Last-Event-ID)."
                    )
        if notes:
            for n_ in notes:
                add(f"- {n_}")
            add("")


def section_storm(rep: Report) -> None:
    """C-N: the connection storm, its connect cost and its delay to the residents."""
    add = rep.lines.append
    scen = rep.scen
    storms = storm_scenarios(scen)
    if not storms:
        return
    d0 = next(iter(scen[storms[0]].values()))[1]
    x0 = storm_metrics(d0)
    add("## Connection storm (C-N): N readers connecting at once")
    add("")
    add(
        f"Two runs per server, each on a freshly started one, with {f(x0['residents'])} resident "
        "readers. N storm readers come from a second load generator whose connects are all "
        "in flight together (`--connect-concurrency` = N ÷ its processes)."
    )
    add("")
    add(
        "1. The residents connect; "
        + (
            f"{f(x0['preload'])} items are published (a new ticker reader is sent the "
            "current items, as in run 2; nchan sends new readers only new messages); "
            if x0["preload"]
            else "with no item on the ticker, "
        )
        + "the N connect onto the residents with nothing more published, stay "
        f"{f(x0['idle_hold_s'], 0)} s and leave; once the server is idle again, "
        f"{f(d0['params']['count'])} items at {f(d0['params']['rate'], 0)}/s (the S1 publisher): "
        "the residents' latency **without a storm**."
    )
    add(
        f"2. The same items to the same number of residents; {f(x0['at_s'], 0)} s into publishing "
        f"the N connect, stay {f(x0['hold_s'], 0)} s after the last of them connected, and "
        "leave (RST) while publishing goes on: the residents' latency **with the storm**."
    )
    add("")
    add(
        "- **µs / connecting reader** (run 1) = the server's CPU (every thread of its process "
        "tree: "
        + (
            "`/proc/PID/task/TID/schedstat`, ns"
            if x0["cpu_source"] == "schedstat"
            else "`/proc/PID/stat`"
        )
        + ", sampled every 20 ms) from just before the storm's load generator starts to 0.5 s "
        'after its last reader had the response headers ("window"), minus the idle rate of '
        "the second before × the window, ÷ N. Work done after the headers (such as sending "
        "ticker's current items) falls in the window."
    )
    add(
        "- **refused** = failed connects + answers that were not a 200 event stream + streams "
        "the server ended (over a cap ticker answers 200 with a retry hint and ends the "
        "body); the goal's figure adds both storms. **listen overflows**: the kernel's "
        "`TcpExt ListenOverflows` during the storm (machine-wide; a full accept queue drops "
        "the SYN and the client sends it again a second later, which shows in connect s)."
    )
    add(
        "- Run 2's **µs / connecting reader while publishing** = (CPU from the storm's first "
        'sample to its "all connected" sample − the residents\' CPU rate from 1 s into '
        "publishing to the storm × that window) ÷ N. It also holds the items sent to storm "
        "readers that had already connected."
    )
    add(
        "- **Residents' latency**: p50 / p99 / max over all their deliveries of each run; "
        "**delay** = with the storm − without. The storm takes a few seconds of the "
        f"{f(d0['params'].get('pub_time_s'), 0)} s of publishing, so it shows in the p99 and "
        "max more than in the p50."
    )
    add("")
    add(
        "| scenario | peer | storm connected / N | refused | cut-offs | connect s | listen overflows | CPU in window s | window s | idle CPU (s/s) | **µs / connecting reader** |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in storms:
        for p in order_peers(scen[s]):
            x = storm_metrics(scen[s][p][1])
            add(
                f"| {s} | {PEER_NAMES.get(p, p)} | {f(x['idle_connected'])} / {f(x['storm'])} | "
                f"{f(x['idle_refused'])} | {f(x['idle_cutoffs'])} | {f(x['idle_connect_s'], 2)} | "
                f"{f(x['idle_overflows'])} | {f(x['idle_cpu_window_s'], 3)} | {f(x['idle_window_s'], 2)} | "
                f"{f(x['idle_rate'], 3)} | **{f(x['us'])}** |"
            )
    add("")

    def lat(v):
        return f"{f(v.get('p50'))} / {f(v.get('p99'))} / {f(v.get('max'))}"

    def sign(v):
        return "–" if v is None else f"{v:+,.1f}"

    add(
        "| scenario | peer | storm connected / N | refused | cut-offs | connect s | listen overflows | residents' CPU before (s/s) | µs / connecting reader while publishing | residents p50 / p99 / max ms, no storm | with the storm | **p99 delay ms** | max delay ms | residents lost / dup / out of order (both runs) |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in storms:
        for p in order_peers(scen[s]):
            x = storm_metrics(scen[s][p][1])
            add(
                f"| {s} | {PEER_NAMES.get(p, p)} | {f(x['live_connected'])} / {f(x['storm'])} | "
                f"{f(x['live_refused'])} | {f(x['live_cutoffs'])} | {f(x['live_connect_s'], 2)} | "
                f"{f(x['live_overflows'])} | {f(x['rate_before'], 3)} | {f(x['us_live'])} | "
                f"{lat(x['base'])} | {lat(x['with'])} | **{sign(x['delay_p99'])}** | "
                f"{sign(x['delay_max'])} | {f(x['lost'])} / {f(x['dups'])} / {f(x['ooo'])} |"
            )
    add("")


def section_burst(rep: Report) -> None:
    """B-N: single urgent items to many idle readers."""
    add = rep.lines.append
    scen = rep.scen
    bursts = burst_scenarios(scen)
    if not bursts:
        return
    d0 = next(iter(scen[bursts[0]].values()))[1]
    gap = 1.0 / d0["params"]["rate"] if d0["params"].get("rate") else None
    add("## Burst (B-N): one urgent item at a time to N idle readers")
    add("")
    add(
        f"N readers connect and sit idle for {f(d0['params'].get('idle_before'), 0)} s; then "
        f"{f(d0['params']['count'])} single items are published, each alone, {f(gap, 0)} s apart. "
        "One load generator holds the readers for all the items, so its figures are over "
        "every delivery of every item: **max** is the time until the last reader had the "
        "worst of the items (the goal's figure), p50 / p99 over all deliveries. The time of "
        "each item on its own is not measured."
    )
    add("")
    add(
        "| scenario | peer | connected | items | deliveries / expected | lost | dup | out of order | cut-offs | p50 ms | p99 ms | **max ms** | server CPU s | client CPU s |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in bursts:
        for p in order_peers(scen[s]):
            d = scen[s][p][1]
            x = metrics(d)
            add(
                f"| {s} | {PEER_NAMES.get(p, p)} | {f(x['connected'])}/{f(x['clients'])} | {f(d['params']['count'])} | "
                f"{f(x['deliveries'])} / {f(x['expected'])} | {f(x['lost'])} | {f(x['dups'])} | {f(x['ooo'])} | "
                f"{f(x['cutoffs'])} | {f(x['p50'])} | {f(x['p99'])} | **{f(x['max'])}** | "
                f"{f(x['srv_cpu_run'], 2)} | {f(x['client_cpu'], 1)} |"
            )
    add("")


def section_ratios(rep: Report) -> None:
    """ticker divided by each peer."""
    add = rep.lines.append
    get = rep.get
    scen = rep.scen
    fan = fanout_scenarios(scen)
    s3s = idle_scenarios(scen)
    others = [p for p in ["nchan", "nchan2", "fanout", "naive"] if any(p in scen[s] for s in scen)]
    if others and any("ticker" in scen[s] for s in scen):
        add("## ticker relative to each peer (ticker ÷ peer; below 1 is better for ticker)")
        add("")
        add("| metric | " + " | ".join(PEER_NAMES.get(p, p) for p in others) + " |")
        add("|---|" + "---|" * len(others))
        rows = []
        for s in fan:
            if "ticker" not in scen[s]:
                continue
            rows.append((f"server µs / delivery, {s}", s, "us_per_deliv"))
        for s in fan:
            if "ticker" in scen[s]:
                rows.append((f"p99 latency, {s}", s, "p99"))
        for s in s3s:
            if "ticker" in scen[s]:
                rows.append((f"idle RSS per reader, {s}", s, "rss_conn_kb"))
        for s in storm_scenarios(scen):
            if "ticker" in scen[s]:
                rows.append((f"server µs / connecting reader, {s}", s, "storm_us"))
        for s in burst_scenarios(scen):
            if "ticker" in scen[s]:
                rows.append((f"time to the last reader (max latency), {s}", s, "max"))
        for label, s, key in rows:
            if not any(p in scen[s] for p in others):
                continue
            t = get("ticker", s)
            cells = []
            for p in others:
                o = get(p, s)
                r = ratio(t[key], o[key]) if o else None
                cells.append(f"{f(r, 2)}×" if r is not None else "–")
            add(f"| {label} | " + " | ".join(cells) + " |")
        add("")


def section_post(rep: Report) -> None:
    """The publish API table."""
    add = rep.lines.append
    runs = rep.runs
    meta = rep.meta
    posts = {
        k: d
        for k, d in runs.items()
        if d["scenario"].startswith("POST-") or "(POST)" in d["scenario"]
    }
    if posts:
        add("## Publish API: `POST /channels/en/items`")
        add("")
        add(
            f"`bench/harness/post_load.py`: {meta['settings']['post_count']:,} POSTs over "
            f"{meta['settings']['post_conns']} keep-alive connections, each sending its next request when "
            "the previous reply is in (closed loop), bearer token, body "
            '`{"headline": "Load seq=N ts=T run=ID"}`. Readers attached to `en` receive every item '
            "plus the `remove` (expire) that pushes the oldest of the 20 live items off; with "
            f"{meta['settings']['post_track_every']}× sampling in the load generator (every "
            f"{meta['settings']['post_track_every']}th reader fully parsed, the others count events) to "
            "keep the client's CPU down. The default write limit (300/min per token, burst 60) "
            "was raised for this test, or every POST after the 60th would be a 429; the limiter "
            "itself still runs."
        )
        add("")
        add(
            "| server | readers | POSTs ok / sent | statuses | **items/s** | POST p50 ms | **POST p99 ms** | readers: deliveries / (POSTs ok × readers) | missing | dup | cut-offs | delivery p50 / p99 ms | server CPU s | server CPU ms / POST | client CPU s |"
        )
        add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for _k, d in sorted(
            posts.items(), key=lambda kd: (kd[1].get("peer", ""), kd[1]["scenario"])
        ):
            x = metrics(d)
            pub = d.get("publisher") or {}
            sent = pub.get("sent")
            okc = pub.get("ok", sent)
            srv_cpu = x["srv_cpu_run"]
            sp = d.get("server_cpu_split")
            if srv_cpu is None and sp:
                srv_cpu = sp["user_s"] + sp["sys_s"]
            if d["params"]["clients"] and okc is not None and x["connected"]:
                # Readers can only get what was published (a run may stop at its time bound).
                x["expected"] = okc * x["connected"]
                x["lost"] = max(0, x["expected"] - (x["deliveries"] or 0))
            add(
                f"| {PEER_NAMES.get(d.get('peer'), d.get('peer'))} ({d['scenario']}) | {f(d['params']['clients'])} | {f(okc)} / {f(sent)} | "
                f"{pub.get('statuses', '–')} | **{f(x['pub_s'])}** | {f(x['pub_p50'])} | **{f(x['pub_p99'])}** | "
                f"{f(x['deliveries']) if d['params']['clients'] else '–'} / {f(x['expected']) if d['params']['clients'] else '–'} | "
                f"{f(x['lost']) if d['params']['clients'] else '–'} | {f(x['dups']) if d['params']['clients'] else '–'} | "
                f"{f(x['cutoffs']) if d['params']['clients'] else '–'} | "
                f"{f(x['p50'])} / {f(x['p99'])} | {f(srv_cpu, 2)} | {f(srv_cpu / okc * 1000 if srv_cpu and okc else None, 2)} | "
                f"{f(pub.get('client_cpu_s', x['client_cpu']), 1)} |"
            )
        add("")


def section_workers(rep: Report) -> None:
    """Two workers against one, metric by metric."""
    add = rep.lines.append
    get = rep.get
    scen = rep.scen
    w2 = [s for s in scen if "ticker-w2" in scen[s]]
    if w2:
        add("## `ticker serve --workers 2` vs 1 worker (same load)")
        add("")
        add("| load | metric | 1 worker | 2 workers | ratio (2 ÷ 1) |")
        add("|---|---|---|---|---|")
        for s in sorted(w2, key=scen_sort):
            if "ticker" not in scen[s]:
                continue
            a1, a2 = get("ticker", s), get("ticker-w2", s)
            is_post = s.startswith("POST")
            for key, lab in [
                ("pub_s", "POST items/s"),
                ("pub_p99", "POST p99 ms"),
                ("deliv_s", "deliveries/s"),
                ("p50", "delivery p50 ms"),
                ("p99", "delivery p99 ms"),
                ("lost", "lost"),
                ("cutoffs", "cut-offs"),
                ("us_per_deliv", "server µs / delivery"),
                ("srv_cpu_run", "server CPU s"),
                ("rss_end", "RSS end MB (all processes)"),
            ]:
                if key in ("pub_s", "pub_p99") and not is_post:
                    continue
                if key == "lost" and is_post:
                    continue  # relative to the requested count; see "missing" above
                if a1.get(key) is None and a2.get(key) is None:
                    continue
                r = ratio(a2[key], a1[key])
                add(
                    f"| {s} | {lab} | {f(a1[key])} | {f(a2[key])} | {f(r, 2) + '×' if r is not None else '–'} |"
                )
        add("")
        add(
            "With 2 workers each process runs its own Redis reader and hub; the kernel spreads "
            "the readers' connections over the two processes. The load generator still "
            "shares the same 2 cores."
        )
        add("")


def section_floors(rep: Report) -> None:
    """The machine's floor: raw write() and the asyncio building blocks."""
    add = rep.lines.append
    floors = rep.floors
    if floors:
        add("## The machine's floor")
        add("")
        add(
            "`bench/tools/write_cost.c` (one `write()` per socket per round, TCP_NODELAY, then the "
            "reader side is drained) and `bench/tools/py_write_cost.py` (uvloop "
            f"`transport.write()` of a pre-framed chunk), {floors['frame_bytes']}-byte frames:"
        )
        add("")
        add("| test | write µs | read µs | per core |")
        add("|---|---|---|---|")
        for k in ("c_1000", "c_5000"):
            c = floors.get(k) or {}
            if "write_us" in c:
                add(
                    f"| C, {c['sockets']:,} sockets | {c['write_us']:.2f} | {c['read_us']:.2f} | "
                    f"{c['writes_per_s_per_core']:,} writes/s; {c['deliveries_per_s_per_core_write_plus_read']:,} write+read/s |"
                )
        u = floors.get("uvloop_1000") or {}
        if "transport_write_us" in u:
            add(
                f"| uvloop transport.write, {u['conns']:,} connections | {u['transport_write_us']:.2f} | – | {u['writes_per_s_per_core']:,} writes/s |"
            )
        add("")
        ac = floors.get("asyncio_costs") or {}
        if "asyncio_timeout_us" in ac:
            add(
                f"And the asyncio building blocks of one delivery ({ac['loop']}, "
                "`bench/tools/asyncio_costs.py`, µs per operation):"
            )
            add("")
            add(
                "| `async with asyncio.timeout()` | `call_at` + `cancel` | `asyncio.Event` set → waiter resumes | bare future set → waiter resumes | 4 nested `async def` send wrappers |"
            )
            add("|---|---|---|---|---|")
            add(
                f"| {ac['asyncio_timeout_us']:.2f} | {ac['call_at_cancel_us']:.2f} | {ac['event_wake_roundtrip_us']:.2f} | "
                f"{ac['future_wake_roundtrip_us']:.2f} | {ac['four_async_wrappers_us']:.2f} |"
            )
            add("")
        add(
            "A delivery costs at least one write in the server plus one read in the load "
            "generator on the same 2 cores; nothing can go below that."
        )
        add("")


def section_profile(rep: Report) -> None:
    """py-spy summaries, then bench/findings.md."""
    add = rep.lines.append
    runs = rep.runs
    meta = rep.meta
    folder = rep.folder
    merge = rep.merge
    prof_map = {p.name: p for p in folder.glob("profile-*.txt")}
    for mdir in merge or ():
        prof_map.update({p.name: p for p in Path(mdir).glob("profile-*.txt")})
    profs = [prof_map[k] for k in sorted(prof_map)]
    if profs:
        add("## Where the time goes (py-spy)")
        add("")
        for pf in profs:
            label = pf.stem.removeprefix("profile-")
            run = runs.get(f"ticker-profile-{label}")
            summ = summarize(pf, top=15)
            desc = ""
            cmd = None
            if run:
                x = metrics(run)
                if run["params"]["clients"]:
                    desc = (
                        f"{run['params']['clients']:,} readers, {run['params']['count']} items at "
                        f"{run['params']['rate']:g}/s (XADD): {f(x['deliveries'])} deliveries, "
                        f"server {f(x['srv_cpu_run'], 2)} s CPU = {f(x['us_per_deliv'])} µs per delivery while profiled"
                    )
                else:
                    desc = (
                        f"no readers, {run['params']['count']:,} POSTs over "
                        f"{meta['settings']['post_conns']} connections: {f(x['pub_s'])} items/s while profiled"
                    )
                cmd = run.get("profile_cmd")
            pfolder = pf.parent
            add(f"### {label}: {desc}")
            add("")
            add(
                f"{summ['samples']:,} on-CPU samples of the server's main thread "
                f"(`{(cmd or '').replace(str(pfolder), 'bench/results/' + pfolder.name).replace(str(BENCH.parent) + '/', '')}`). Each sample is "
                "counted once, in the innermost bucket it matches (`bench/profile_summary.py`):"
            )
            add("")
            add("| bucket | share |")
            add("|---|---|")
            for k, _n, p in summ["buckets"]:
                add(f"| {k} | {p:.1f}% |")
            add("")
            add(
                "Top self time (leaf Python frames; time in C code and system calls is charged to the "
                "Python frame that called it, e.g. `transport.write()` to uvicorn's `send`):"
            )
            add("")
            add("| function | self |")
            add("|---|---|")
            for k, _n, p in summ["self"][:15]:
                add(f"| `{k}` | {p:.1f}% |")
            add("")
        fnd = BENCH / "findings.md"
        if fnd.exists():
            add(fnd.read_text().strip())
            add("")


def section_reproduce(rep: Report) -> None:
    """Commands to reproduce, one example per kind, what was skipped."""
    add = rep.lines.append
    runs = rep.runs
    meta = rep.meta
    folder = rep.folder
    reruns = rep.reruns
    regen = rep.regen
    add("## Reproduce")
    add("")
    add("```sh")
    add("apt-get install -y redis-server nginx-light libnginx-mod-nchan   # Debian 12")
    add("uv sync --dev && uv pip install py-spy     # or PYSPY=/path/to/py-spy")
    add(f"{' '.join(meta['argv'])}      # this run")
    add("bench/run                # full matrix + ticker extras")
    add("bench/run --quick        # S3-2000 + S1-1000, ticker and nchan, short profile")
    add("bench/run --peers ticker,nchan --scenarios S1-1000,S3")
    add(
        "bench/run --peers ticker,ticker-asgi,nchan --scenarios S1-2000,C-2000,B-10000 --extras none"
    )
    add(f"{regen}   # regenerate this page")
    add("```")
    add("")
    add(
        "Each run's exact load-generator and publisher command lines are in its JSON "
        "(`commands`); one example per kind from this run:"
    )
    add("")
    seen = set()
    add("```sh")
    for k, d in sorted(
        runs.items(),
        key=lambda kd: (
            PEER_ORDER.index(kd[1].get("peer")) if kd[1].get("peer") in PEER_ORDER else 99,
            kd[0],
        ),
    ):
        sc = d["scenario"]
        if sc.startswith("S1") and "(POST)" not in sc:
            kind = (d.get("peer"), "S1")
        elif d.get("peer") == "ticker" and sc.startswith(
            ("S3", "POST-", "profile fanout", "C-", "B-")
        ):
            kind = ("ticker", sc.split("-")[0].split()[0])
        else:
            continue
        if kind in seen or not d.get("commands"):
            continue
        seen.add(kind)
        add(f"# {k}")
        cmds = d["commands"]
        if "storm" in d:
            idle = d["storm"].get("idle") or {}
            add(
                "# run 2: the residents; the storm (started "
                f"{f((d['storm'].get('live') or {}).get('at_s'), 0)} s into publishing); the publisher"
            )
            run1 = [c for c in (idle.get("preload_command"), idle.get("command")) if c]
            cmds = cmds + (
                [
                    "# run 1: the residents and the publisher as above (another run id); between "
                    f"them, {f((idle.get('preload') or {}).get('sent'))} items and the storm onto "
                    "the idle residents"
                ]
                + run1
                if run1
                else []
            )
        for c in cmds:
            add(
                c.replace(str(BENCH.parent) + "/", "").replace(
                    str(folder), "bench/results/" + folder.name
                )
            )
    add("```")
    add("")
    if meta.get("skipped"):
        add("## Skipped in the first run")
        add("")
        for s in meta["skipped"]:
            name = s.split(":", 1)[0].split(" (")[0]
            key = {"ticker": "ticker-profile"}.get(name, name) if "(profile)" in s else name
            done = any(k.startswith(key) for k, _ in reruns)
            add(
                f"- {s}" + (" — run afterwards (see the follow-up list at the top)" if done else "")
            )
        add("")


def _problems(name, sub):
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


def delivery_check(rep: Report, peer):
    """Every run of `peer` whose readers expect every item (S1, S2, C-N with its
    no-storm baseline, B-N): (runs checked, problems)."""
    names, bad = [], []
    for s in sorted(rep.scen, key=scen_sort):
        if peer not in rep.scen[s] or not s.startswith(("S1", "S2", "C-", "B-")):
            continue
        d = rep.scen[s][peer][1]
        names.append(s)
        parts = [(s, d.get("subscribers"))]
        if "baseline" in d:
            parts.append((f"{s} without the storm", (d["baseline"] or {}).get("subscribers")))
        bad += [x for x in (_problems(n, sub) for n, sub in parts) if x]
    return names, bad


def _goal_row(rep, add, asgi, label, target, fig, rule):
    """One row of the goals table. fig(peer) -> (value, text, also_ok) or None (not run);
    rule(value, nchan's value) -> True, False or None (cannot tell)."""
    n = fig("nchan")

    def judge(x):
        if x is None:
            return "not run"
        ok = rule(x[0], n[0] if n else None) if x[0] is not None else None
        if ok is None:
            return "–"
        return "yes" if ok and x[2] else "no"

    def rat(x):
        if x is None or n is None or x[0] is None or n[0] is None or x[0] < 0 or n[0] <= 0:
            return "–"
        return f"{x[0] / n[0]:.2f}×"

    t = fig("ticker")
    row = [
        label,
        target,
        t[1] if t else "not run",
        n[1] if n else "not run",
        rat(t),
        f"**{judge(t)}**",
    ]
    if asgi:
        g = fig("ticker-asgi")
        r = rat(g)
        row.append(f"{g[1]}{'' if r == '–' else f' ({r})'}: {judge(g)}" if g else "not run")
    add("| " + " | ".join(row) + " |")


def _within(k):
    """Met when the peer's value is at most k times nchan's."""
    return lambda v, nv: None if v is None or nv is None else v <= k * nv


def section_goals(rep: Report) -> None:
    """Issue #18's goals, one row per figure: ticker, nchan, the ratio, met or not."""
    add = rep.lines.append
    scen = rep.scen
    asgi = any("ticker-asgi" in scen[s] for s in scen)
    add("## Goals (issue #18)")
    add("")
    add(
        "ticker and nchan from the same run, one worker each. **met?** is ticker's"
        + (
            "; the last column is ticker-asgi's figure, its ratio to nchan's and whether it "
            "meets the goal"
            if asgi
            else ""
        )
        + ". How each figure is made: the sections below (connection storm, burst, fan-out, "
        "idle readers)."
    )
    add("")
    head = "| goal | target | ticker | nchan | ticker ÷ nchan | met? |"
    rule_ = "|---|---|---|---|---|---|"
    if asgi:
        head += " ticker-asgi (÷ nchan): met? |"
        rule_ += "---|"
    add(head)
    add(rule_)

    def run_of(peer, s):
        d = scen.get(s, {}).get(peer)
        return d[1] if d else None

    def named(kind, sizes, have):
        """The scenarios of this kind that ran, plus the goal's sizes that did not."""
        present = {size(x) for x in have}
        return sorted(have + [f"{kind}-{n}" for n in sizes if n not in present], key=scen_sort)

    storms = named("C", (2000, 10000), storm_scenarios(scen))
    for s in storms:
        resid = next((storm_metrics(d[1])["residents"] for d in scen.get(s, {}).values()), None)

        def connect(peer, s=s):
            d = run_of(peer, s)
            if d is None:
                return None
            x = storm_metrics(d)
            text = f"{f(x['us'])} µs, {f(x['refused'])} refused"
            return x["us"], text, x["refused"] == 0

        _goal_row(
            rep,
            add,
            asgi,
            f"server CPU per connecting reader: {f(size(s))} connecting at once"
            + (f" onto {f(resid)} residents" if resid else "")
            + f" ({s})",
            "≤ 2× nchan's, 0 refused",
            connect,
            _within(2.0),
        )
    for s in storms:

        def delay(peer, s=s):
            d = run_of(peer, s)
            if d is None:
                return None
            x = storm_metrics(d)
            if x["delay_p99"] is None:
                return None, "–", True
            text = f"{x['delay_p99']:+,.1f} ms (p99 {f(x['base'].get('p99'))} → {f(x['with'].get('p99'))})"
            return x["delay_p99"], text, True

        _goal_row(
            rep,
            add,
            asgi,
            f"the storm's delay to the residents: their p99 with it − without it ({s})",
            "≤ nchan's",
            delay,
            _within(1.0),
        )

    def s1(peer, s, key, unit, nd=1):
        d = run_of(peer, s)
        if d is None:
            return None
        v = metrics(d)[key]
        return v, f"{f(v, nd)}{unit}", True

    _goal_row(
        rep,
        add,
        asgi,
        "server CPU per delivery, 2,000 readers × 20 items/s (S1-2000)",
        "≤ 1.0× nchan's",
        lambda p: s1(p, "S1-2000", "us_per_deliv", " µs"),
        _within(1.0),
    )
    _goal_row(
        rep,
        add,
        asgi,
        "p99 latency, 2,000 readers × 20 items/s (S1-2000)",
        "≤ nchan's",
        lambda p: s1(p, "S1-2000", "p99", " ms"),
        _within(1.0),
    )
    _goal_row(
        rep,
        add,
        asgi,
        "p99 latency, 5,000 readers × 20 items/s (S1-5000)",
        "≤ 2× nchan's",
        lambda p: s1(p, "S1-5000", "p99", " ms"),
        _within(2.0),
    )
    _goal_row(
        rep,
        add,
        asgi,
        "lost, 5,000 readers × 20 items/s (S1-5000)",
        "0",
        lambda p: s1(p, "S1-5000", "lost", ""),
        lambda v, nv: None if v is None else v == 0,
    )
    s3s = idle_scenarios(scen)
    s3 = next(
        (x for x in s3s if any(d[1]["params"].get("clients") == 10000 for d in scen[x].values())),
        s3s[-1] if s3s else "S3",
    )
    n3 = next((d[1]["params"].get("clients") for d in scen.get(s3, {}).values()), 10000)
    _goal_row(
        rep,
        add,
        asgi,
        f"RSS per idle reader, {f(n3)} readers ({s3})"
        + ("" if n3 == 10000 else "; the goal is at 10,000"),
        "≤ 12 KB",
        lambda p: s1(p, s3, "rss_conn_kb", " KB"),
        lambda v, nv: None if v is None else v <= 12.0,
    )
    for s in named("B", (10000,), burst_scenarios(scen)):
        k = next((d[1]["params"].get("count") for d in scen.get(s, {}).values()), None)
        _goal_row(
            rep,
            add,
            asgi,
            f"burst: time until the last of {f(size(s))} idle readers has an urgent item"
            + (f" (the worst of {k} items)" if k else "")
            + f" ({s})",
            "≤ nchan's",
            lambda p, s=s: s1(p, s, "max", " ms"),
            _within(1.0),
        )

    def clean(peer):
        names, bad = delivery_check(rep, peer)
        if not names:
            return None
        if not bad:
            return 0, f"0 in {len(names)} runs ({', '.join(names)})", True
        return len(bad), "; ".join(bad), True

    _goal_row(
        rep,
        add,
        asgi,
        "nothing lost, duplicated, out of order or cut off, in every run (S1, S2, C-N with and without the storm, B-N)",
        "0",
        clean,
        lambda v, nv: None if v is None else v == 0,
    )
    add("")


def section_targets(rep: Report) -> None:
    """The issue's targets, one row each, with whether they were met."""
    add = rep.lines.append
    rows: list[str] = []
    for row in (
        target_cpu,
        target_memory,
        target_loss,
        target_latency,
        target_post,
        target_workers,
    ):
        row(Report(rep.folder, rep.merge, rep.meta, rep.runs, rep.floors, rep.reruns, rows))
    if not rows:
        return  # none of the scenarios they are about ran
    add("## Targets (issue #5)")
    add("")
    add("| target | ticker | reference | met? |")
    add("|---|---|---|---|")
    for r in rows:
        add(r)
    add("")


SECTIONS = [
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


def write(folder: Path, target: Path, merge=()):
    rep = load_report(folder, merge)
    for section in SECTIONS:
        section(rep)
    target.write_text("\n".join(rep.lines).rstrip() + "\n")


if __name__ == "__main__":
    write(
        Path(sys.argv[1]),
        Path(sys.argv[2]) if len(sys.argv) > 2 else BENCH.parent / "docs" / "performance.md",
    )
