"""Every table of the page, declared once: its columns, each a head and how a row's cell
is written. To change a table, change its declaration here; the sections
(bench/report/sections.py, about.py, goals.py, targets.py, profile.py) only choose the
rows.

Most tables have a row per peer per scenario (`PeerRow`); the others have a row type of
their own (bench/report/rows.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from bench.report.figures import Figures, f
from bench.report.markdown import Column, Table
from bench.report.names import peer_name
from bench.report.results import JSON
from bench.report.rows import Compared, Floor, GoalRow, PeerRow, PostRow, Share, TargetRow


def col(head: str, cell: Callable[[PeerRow], str]) -> Column[PeerRow]:
    """A column of a table with a row per peer per scenario."""
    return Column(head, cell)


def _latency(v: dict[str, Any]) -> str:
    return f"{f(v.get('p50'))} / {f(v.get('p99'))} / {f(v.get('max'))}"


def _signed(v: float | None) -> str:
    return "–" if v is None else f"{v:+,.1f}"


def _hold_mb(r: PeerRow) -> str:
    hold = (((r.run.get("subscribers") or {}).get("server") or {}).get("hold") or {}).get("rss_kb")
    return f(hold / 1024 if hold else None)


SCENARIO = col("scenario", lambda r: r.scenario)
PEER = col("peer", lambda r: peer_name(r.peer))

# S3: memory per idle reader.
IDLE = Table(
    [
        SCENARIO,
        PEER,
        col("connected", lambda r: f"{f(r.x.connected)}/{f(r.x.clients)}"),
        col("connect s", lambda r: f(r.x.connect_s)),
        col("server CPU to connect s", lambda r: f(r.x.srv_cpu_connect, 2)),
        col("RSS before MB", lambda r: f(r.x.rss_before)),
        col("RSS after hold MB", _hold_mb),
        col("**RSS KB / reader**", lambda r: f"**{f(r.x.rss_conn_kb)}**"),
        col("PSS KB / reader", lambda r: f(r.x.pss_conn_kb)),
    ]
)

# The delivery columns that fan-out (S1, S2) and burst (B-N) share.
DELIVERIES = col("deliveries / expected", lambda r: f"{f(r.x.deliveries)} / {f(r.x.expected)}")
LOST = col("lost", lambda r: f(r.x.lost))
DUP = col("dup", lambda r: f(r.x.dups))
OOO = col("out of order", lambda r: f(r.x.ooo))
CUTOFFS = col("cut-offs", lambda r: f(r.x.cutoffs))
P50 = col("p50 ms", lambda r: f(r.x.p50))
P99 = col("p99 ms", lambda r: f(r.x.p99))
SERVER_CPU = col("server CPU s", lambda r: f(r.x.srv_cpu_run, 2))
CLIENT_CPU = col("client CPU s", lambda r: f(r.x.client_cpu, 1))

# S1, S2: fan-out.
FANOUT = Table(
    [
        SCENARIO,
        PEER,
        col("connected", lambda r: f(r.x.connected)),
        DELIVERIES,
        LOST,
        DUP,
        OOO,
        CUTOFFS,
        P50,
        P99,
        col("max ms", lambda r: f(r.x.max)),
        col("deliveries/s", lambda r: f(r.x.deliv_s)),
        col("publish/s", lambda r: f(r.x.pub_s)),
        SERVER_CPU,
        col("**µs / delivery**", lambda r: f"**{f(r.x.us_per_deliv)}**"),
        col("in kernel", lambda r: "–" if r.x.sys_pct is None else f(r.x.sys_pct, 0) + "%"),
        col("redis CPU s", lambda r: f(r.x.redis_cpu, 2)),
        CLIENT_CPU,
        col("RSS end MB", lambda r: f(r.x.rss_end)),
        col("stop", lambda r: r.x.stop),
    ]
)

# The columns both storms of a C-N share.
STORM_CONNECTED = "storm connected / N"
LISTEN_OVERFLOWS = "listen overflows"

# C-N run 1: the storm onto idle residents, its connect CPU.
STORM_CONNECT = Table(
    [
        SCENARIO,
        PEER,
        col(STORM_CONNECTED, lambda r: f"{f(r.storm.idle_connected)} / {f(r.storm.storm)}"),
        col("refused", lambda r: f(r.storm.idle_refused)),
        col("cut-offs", lambda r: f(r.storm.idle_cutoffs)),
        col("connect s", lambda r: f(r.storm.idle_connect_s, 2)),
        col(LISTEN_OVERFLOWS, lambda r: f(r.storm.idle_overflows)),
        col("CPU in window s", lambda r: f(r.storm.idle_cpu_window_s, 3)),
        col("window s", lambda r: f(r.storm.idle_window_s, 2)),
        col("idle CPU (s/s)", lambda r: f(r.storm.idle_rate, 3)),
        col("**µs / connecting reader**", lambda r: f"**{f(r.storm.us)}**"),
    ]
)

# C-N run 2: the storm while the residents get their items, their latency against run 1.
STORM_LIVE = Table(
    [
        SCENARIO,
        PEER,
        col(STORM_CONNECTED, lambda r: f"{f(r.storm.live_connected)} / {f(r.storm.storm)}"),
        col("refused", lambda r: f(r.storm.live_refused)),
        col("cut-offs", lambda r: f(r.storm.live_cutoffs)),
        col("connect s", lambda r: f(r.storm.live_connect_s, 2)),
        col(LISTEN_OVERFLOWS, lambda r: f(r.storm.live_overflows)),
        col("residents' CPU before (s/s)", lambda r: f(r.storm.rate_before, 3)),
        col("µs / connecting reader while publishing", lambda r: f(r.storm.us_live)),
        col("residents p50 / p99 / max ms, no storm", lambda r: _latency(r.storm.base)),
        col("with the storm", lambda r: _latency(r.storm.with_storm)),
        col("**p99 delay ms**", lambda r: f"**{_signed(r.storm.delay_p99)}**"),
        col("max delay ms", lambda r: _signed(r.storm.delay_max)),
        col(
            "residents lost / dup / out of order (both runs)",
            lambda r: f"{f(r.storm.lost)} / {f(r.storm.dups)} / {f(r.storm.ooo)}",
        ),
    ]
)

# B-N: single items to many idle readers.
BURST = Table(
    [
        SCENARIO,
        PEER,
        col("connected", lambda r: f"{f(r.x.connected)}/{f(r.x.clients)}"),
        col("items", lambda r: f(r.run["params"]["count"])),
        DELIVERIES,
        LOST,
        DUP,
        OOO,
        CUTOFFS,
        P50,
        P99,
        col("**max ms**", lambda r: f"**{f(r.x.max)}**"),
        SERVER_CPU,
        CLIENT_CPU,
    ]
)


def _ms_per_post(r: PostRow) -> str:
    return f(r.srv_cpu / r.ok * 1000 if r.srv_cpu and r.ok else None, 2)


POST = Table(
    [
        Column[PostRow](
            "server", lambda r: f"{peer_name(str(r.run.get('peer')))} ({r.run['scenario']})"
        ),
        Column("readers", lambda r: f(r.run["params"]["clients"])),
        Column("POSTs ok / sent", lambda r: f"{f(r.ok)} / {f(r.sent)}"),
        Column("statuses", lambda r: str(r.pub.get("statuses", "–"))),
        Column("**items/s**", lambda r: f"**{f(r.x.pub_s)}**"),
        Column("POST p50 ms", lambda r: f(r.x.pub_p50)),
        Column("**POST p99 ms**", lambda r: f"**{f(r.x.pub_p99)}**"),
        Column(
            "readers: deliveries / (POSTs ok × readers)",
            lambda r: f"{r.readers(f(r.x.deliveries))} / {r.readers(f(r.x.expected))}",
        ),
        Column("missing", lambda r: r.readers(f(r.x.lost))),
        Column("dup", lambda r: r.readers(f(r.x.dups))),
        Column("cut-offs", lambda r: r.readers(f(r.x.cutoffs))),
        Column("delivery p50 / p99 ms", lambda r: f"{f(r.x.p50)} / {f(r.x.p99)}"),
        Column("server CPU s", lambda r: f(r.srv_cpu, 2)),
        Column("server CPU ms / POST", _ms_per_post),
        Column("client CPU s", lambda r: f(r.pub.get("client_cpu_s", r.x.client_cpu), 1)),
    ]
)


WORKERS = Table(
    [
        Column[Compared]("load", lambda r: r.load),
        Column("metric", lambda r: r.metric),
        Column("1 worker", lambda r: f(r.one)),
        Column("2 workers", lambda r: f(r.two)),
        Column("ratio (2 ÷ 1)", lambda r: "–" if r.ratio is None else f(r.ratio, 2) + "×"),
    ]
)


class Metric(NamedTuple):
    """A figure the workers table compares, and on which loads."""

    label: str
    get: Callable[[Figures], Any]
    post: bool  # on the publish-API loads
    fanout: bool  # on the fan-out loads


# `--workers 2` against 1 worker, in this order. `lost` is left out of the POST loads:
# there it is relative to the requested count (the POST table's "missing" is not).
WORKER_METRICS = [
    Metric("POST items/s", lambda x: x.pub_s, post=True, fanout=False),
    Metric("POST p99 ms", lambda x: x.pub_p99, post=True, fanout=False),
    Metric("deliveries/s", lambda x: x.deliv_s, post=True, fanout=True),
    Metric("delivery p50 ms", lambda x: x.p50, post=True, fanout=True),
    Metric("delivery p99 ms", lambda x: x.p99, post=True, fanout=True),
    Metric("lost", lambda x: x.lost, post=False, fanout=True),
    Metric("cut-offs", lambda x: x.cutoffs, post=True, fanout=True),
    Metric("server µs / delivery", lambda x: x.us_per_deliv, post=True, fanout=True),
    Metric("server CPU s", lambda x: x.srv_cpu_run, post=True, fanout=True),
    Metric("RSS end MB (all processes)", lambda x: x.rss_end, post=True, fanout=True),
]


class Ratio(NamedTuple):
    """A row of "ticker relative to each peer": a figure, on which scenarios."""

    label: str  # {s} is the scenario
    kinds: tuple[str, ...]
    get: Callable[[Figures], float | None]


RATIOS = [
    Ratio("server µs / delivery, {s}", ("S1", "S2"), lambda x: x.us_per_deliv),
    Ratio("p99 latency, {s}", ("S1", "S2"), lambda x: x.p99),
    Ratio("idle RSS per reader, {s}", ("S3",), lambda x: x.rss_conn_kb),
    Ratio("server µs / connecting reader, {s}", ("C-",), lambda x: x.storm_us),
    Ratio("time to the last reader (max latency), {s}", ("B-",), lambda x: x.max),
]


# A row of "ticker relative to each peer": its label, then ticker ÷ each peer.
RatioRow = tuple[str, list[float | None]]


def _times(i: int) -> Callable[[RatioRow], str]:
    return lambda r: "–" if (v := r[1][i]) is None else f"{f(v, 2)}×"


def ratios_table(peers: Sequence[str]) -> Table[RatioRow]:
    """A column per peer: ticker ÷ that peer."""
    return Table(
        [Column[RatioRow]("metric", lambda r: r[0])]
        + [Column(peer_name(p), _times(i)) for i, p in enumerate(peers)]
    )


FLOORS = Table(
    [
        Column[Floor]("test", lambda r: r.test),
        Column("write µs", lambda r: r.write_us),
        Column("read µs", lambda r: r.read_us),
        Column("per core", lambda r: r.per_core),
    ]
)


def _us(key: str) -> Callable[[JSON], str]:
    return lambda ac: f"{ac[key]:.2f}"


# The asyncio building blocks of one delivery (bench/tools/asyncio_costs.py), µs each.
ASYNCIO = Table(
    [
        Column("`async with asyncio.timeout()`", _us("asyncio_timeout_us")),
        Column("`call_at` + `cancel`", _us("call_at_cancel_us")),
        Column("`asyncio.Event` set → waiter resumes", _us("event_wake_roundtrip_us")),
        Column("bare future set → waiter resumes", _us("future_wake_roundtrip_us")),
        Column("4 nested `async def` send wrappers", _us("four_async_wrappers_us")),
    ]
)

PROFILE_BUCKETS = Table(
    [Column[Share]("bucket", lambda r: r[0]), Column("share", lambda r: f"{r[2]:.1f}%")]
)
PROFILE_SELF = Table(
    [Column[Share]("function", lambda r: f"`{r[0]}`"), Column("self", lambda r: f"{r[2]:.1f}%")]
)


GOALS = Table(
    [
        Column[GoalRow]("goal", lambda r: r.goal),
        Column("target", lambda r: r.target),
        Column("ticker", lambda r: r.ticker),
        Column("nchan", lambda r: r.nchan),
        Column("ticker ÷ nchan", lambda r: r.ratio),
        Column("met?", lambda r: f"**{r.met}**"),
    ]
)
# The goals table's last column, where ticker-asgi ran.
GOALS_ASGI = Column[GoalRow]("ticker-asgi (÷ nchan): met?", lambda r: r.asgi)


TARGETS = Table(
    [
        Column[TargetRow]("target", lambda r: r.target),
        Column("ticker", lambda r: r.ticker),
        Column("reference", lambda r: r.reference),
        Column("met?", lambda r: r.met),
    ]
)
