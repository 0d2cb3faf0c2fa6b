"""Figures: what the tables show, computed from one run's JSON, and how a number is
written on the page.

Every figure may be None (the run did not produce it); `f` writes None as `–`. The
runner writes numbers as JSON ints or floats, and `f` keeps that difference on the page
(an int with thousands separators, a float with `nd` decimals), so a figure is passed
through as the JSON has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report.results import JSON


def f(v: object, nd: int = 1) -> str:
    """A figure as the page writes it: `–` for None, 1,234 for a large number."""
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def ratio(a: float | None, b: float | None) -> float | None:
    """a ÷ b, None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


@dataclass(frozen=True)
class Figures:
    """The figures of one run (S1, S2, S3, B-N, POST): readers, publisher, server."""

    clients: int | None
    connected: int | None
    connect_s: float | None
    expected: int | None
    deliveries: int
    lost: int | None
    dups: int | None
    ooo: int | None
    cutoffs: int | None
    p50: float | None
    p99: float | None
    max: float | None
    deliv_s: float | None
    pub_s: float | None
    pub_p50: float | None
    pub_p99: float | None
    srv_cpu_run: float | None
    srv_cpu_connect: float | None
    us_per_deliv: float | None
    redis_cpu: float | None
    client_cpu: float | None
    rss_end: float | None
    rss_before: float | None
    rss_conn_kb: float | None
    pss_conn_kb: float | None
    stop: str
    sys_pct: float | None  # the server's CPU share in system calls
    storm_us: float | None  # a C-N run's connect CPU per reader (run 1)


def figures(d: JSON) -> Figures:
    """The figures the issue asks for, from one run's JSON."""
    s = d.get("subscribers") or {}
    srv = s.get("server") or {}
    lat = s.get("latency_ms") or {}
    pub = d.get("publisher") or {}
    deliv = s.get("deliveries") or 0
    cpu_run = srv.get("cpu_s_run")
    aux = s.get("aux") or {}
    return Figures(
        clients=d["params"].get("clients"),
        connected=s.get("clients_connected"),
        connect_s=s.get("connect_time_s"),
        expected=s.get("messages_expected"),
        deliveries=deliv,
        lost=s.get("lost"),
        dups=s.get("duplicates"),
        ooo=s.get("out_of_order"),
        cutoffs=s.get("disconnects"),
        p50=lat.get("p50"),
        p99=lat.get("p99"),
        max=lat.get("max"),
        deliv_s=s.get("deliveries_per_s"),
        pub_s=pub.get("rate_achieved"),
        pub_p50=(pub.get("send_ms") or {}).get("p50"),
        pub_p99=(pub.get("send_ms") or {}).get("p99"),
        srv_cpu_run=cpu_run,
        srv_cpu_connect=srv.get("cpu_s_connect"),
        us_per_deliv=(cpu_run / deliv * 1e6) if (cpu_run is not None and deliv) else None,
        redis_cpu=sum(v.get("cpu_s", 0) for v in aux.values()) if aux else None,
        client_cpu=s.get("client_cpu_s"),
        rss_end=srv.get("rss_mb_end"),
        rss_before=srv.get("rss_mb_before"),
        rss_conn_kb=srv.get("rss_per_conn_kb"),
        pss_conn_kb=srv.get("pss_per_conn_kb"),
        stop=",".join(s.get("stop_reasons") or []),
        sys_pct=_sys_pct(d.get("server_cpu_split")),
        storm_us=((d.get("storm") or {}).get("idle") or {}).get("connect_us_per_reader"),
    )


def _sys_pct(split: JSON | None) -> float | None:
    if not split:
        return None
    tot = split.get("user_s", 0) + split.get("sys_s", 0)
    return 100.0 * split["sys_s"] / tot if tot > 0 else None


def refused(ss: JSON) -> int | None:
    """A storm's readers that did not get a stream: failed connects, answers that were not
    a 200 event stream, streams the server ended. None without a result."""
    if "clients_connected" not in ss:
        return None
    total: int = (
        sum((ss.get("connect_errors") or {}).values())
        + sum((ss.get("bad_status") or {}).values())
        + (ss.get("disconnects") or 0)
    )
    return total


@dataclass(frozen=True)
class StormFigures:
    """A C-N run: both storms (run 1 onto idle residents, run 2 while they get items) and
    the residents' latency without and with the storm."""

    residents: int | None
    storm: int | None
    at_s: float | None
    hold_s: float | None
    idle_hold_s: float | None
    preload: int | None
    refused: int | None  # both storms
    # run 1, the storm onto idle residents: the connect CPU
    idle_connected: int | None
    idle_refused: int | None
    idle_cutoffs: int | None
    idle_connect_s: float | None
    idle_overflows: int | None
    idle_window_s: float | None
    idle_cpu_window_s: float | None
    idle_rate: float | None
    us: float | None
    cpu_source: str | None
    # run 2, the storm while the residents get their items
    live_connected: int | None
    live_refused: int | None
    live_cutoffs: int | None
    live_connect_s: float | None
    live_overflows: int | None
    rate_before: float | None
    us_live: float | None
    # the residents: latency (p50, p99, max) without the storm and with it
    base: dict[str, Any]
    with_storm: dict[str, Any]
    delay_p99: float | None
    delay_max: float | None
    lost: int | None
    dups: int | None
    ooo: int | None


def storm_figures(d: JSON) -> StormFigures:
    """A C-N run's figures."""
    st = d.get("storm") or {}
    idle, live = st.get("idle") or {}, st.get("live") or {}
    si, sl = idle.get("subscribers") or {}, live.get("subscribers") or {}
    base = (d.get("baseline") or {}).get("subscribers") or {}
    with_ = d.get("subscribers") or {}
    lat0, lat1 = base.get("latency_ms") or {}, with_.get("latency_ms") or {}

    def diff(k: str) -> float | None:
        a: float | None = lat1.get(k)
        b: float | None = lat0.get(k)
        return None if a is None or b is None else a - b

    r_idle, r_live = refused(si), refused(sl)
    return StormFigures(
        residents=d["params"].get("residents", d["params"].get("clients")),
        storm=st.get("clients"),
        at_s=live.get("at_s"),
        hold_s=live.get("hold_s"),
        idle_hold_s=idle.get("hold_s"),
        preload=(idle.get("preload") or {}).get("sent"),
        refused=None if r_idle is None and r_live is None else (r_idle or 0) + (r_live or 0),
        idle_connected=si.get("clients_connected"),
        idle_refused=r_idle,
        idle_cutoffs=si.get("disconnects"),
        idle_connect_s=si.get("connect_time_s"),
        idle_overflows=(idle.get("listen") or {}).get("ListenOverflows"),
        idle_window_s=idle.get("window_s"),
        idle_cpu_window_s=idle.get("cpu_window_s"),
        idle_rate=idle.get("idle_rate"),
        us=idle.get("connect_us_per_reader"),
        cpu_source=idle.get("cpu_source") or live.get("cpu_source"),
        live_connected=sl.get("clients_connected"),
        live_refused=r_live,
        live_cutoffs=sl.get("disconnects"),
        live_connect_s=sl.get("connect_time_s"),
        live_overflows=(live.get("listen") or {}).get("ListenOverflows"),
        rate_before=live.get("rate_before"),
        us_live=live.get("us_per_reader"),
        base=lat0,
        with_storm=lat1,
        delay_p99=diff("p99"),
        delay_max=diff("max"),
        lost=sum_or_none(base.get("lost"), with_.get("lost")),
        dups=sum_or_none(base.get("duplicates"), with_.get("duplicates")),
        ooo=sum_or_none(base.get("out_of_order"), with_.get("out_of_order")),
    )


def sum_or_none(*v: int | None) -> int | None:
    """The sum, or None when any part is missing."""
    return None if any(x is None for x in v) else sum(x for x in v if x is not None)
