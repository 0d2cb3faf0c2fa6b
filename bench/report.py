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
        {"S3": 0, "S1": 1, "S2": 2}.get(kind, 3),
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
    reruns = []
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
            reruns.append((k, d["_rerun"]))
    return Report(folder, merge, meta, runs, floors, reruns)


def fanout_scenarios(scen):
    """S1 and S2, in table order."""
    return sorted([s for s in scen if s.startswith(("S1", "S2"))], key=scen_sort)


def idle_scenarios(scen):
    """S3, in table order."""
    return sorted([s for s in scen if s.startswith("S3")], key=scen_sort)


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
            "not the full matrix. Run `bench/run` (about 16 minutes for the matrix and 6 for the ticker extras, on an otherwise idle "
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
        for k, rr in sorted(reruns):
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
    add("uv sync && uv pip install py-spy     # or PYSPY=/path/to/py-spy")
    add(f"{' '.join(meta['argv'])}      # this run")
    add("bench/run                # full matrix (~16 min) + ticker extras (~6 min)")
    add("bench/run --quick        # S3-2000 + S1-1000, ticker and nchan, ~3 min")
    add("bench/run --peers ticker,nchan --scenarios S1-1000,S3")
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
        elif d.get("peer") == "ticker" and sc.startswith(("S3", "POST-", "profile fanout")):
            kind = ("ticker", sc.split("-")[0].split()[0])
        else:
            continue
        if kind in seen or not d.get("commands"):
            continue
        seen.add(kind)
        add(f"# {k}")
        for c in d["commands"]:
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


def section_targets(rep: Report) -> None:
    """The issue's targets, one row each, with whether they were met."""
    add = rep.lines.append
    add("## Targets (issue #5)")
    add("")
    add("| target | ticker | reference | met? |")
    add("|---|---|---|---|")
    for row in (
        target_cpu,
        target_memory,
        target_loss,
        target_latency,
        target_post,
        target_workers,
    ):
        row(rep)
    add("")


SECTIONS = [
    section_header,
    section_targets,
    section_machine,
    section_method,
    section_idle,
    section_fanout,
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
