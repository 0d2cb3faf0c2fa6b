"""``ticker stats``: per channel, then per process of the fleet, then Redis's disk; printed
by ``listing.show`` like every listing."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from ticker.cli.api import call
from ticker.cli.listing import Header, show
from ticker.cli.options import AsJson
from ticker.cli.times import id_relative, id_utc, relative, uptime, utc

STATS_COLUMNS = ("channel", "readers", "live", "history", "oldest_at", "last_publish_at")
_NOT_CHANNELS = ("_fleet", "_disk")


def stats(as_json: AsJson = False, header: Header = False) -> None:
    """Per channel: readers (every process), items live, history, last publish; then each
    process of the fleet: id, host, pid, readers, uptime."""
    body = call(lambda c: c.request("GET", "/stats"))
    fleet: dict[str, Any] | None = body.get("_fleet")
    disk: dict[str, Any] | None = body.get("_disk")
    channels = {name: info for name, info in body.items() if name not in _NOT_CHANNELS}
    processes = (fleet or {}).get("processes", [])

    def rows() -> list[list[str]]:
        # Channels, then one "process" line per process (a first column tells them apart),
        # then the "disk" line; times in UTC, uptime in seconds.
        lines = [
            [*_counts(name, info), id_utc(info["oldest_id"]), id_utc(info["last_id"])]
            for name, info in channels.items()
        ]
        lines += [
            [
                "process",
                p["id"],
                p["host"],
                str(p["pid"]),
                str(p["readers"]),
                str(int(p["uptime_s"])),
            ]
            for p in processes
        ]
        if disk:
            lines.append(
                [
                    "disk",
                    str(disk.get("aof")),
                    utc(disk.get("rewrite_asked_at")),
                    str(disk.get("last_rewrite_status") or "-"),
                    str(disk.get("purges_waiting", 0)),
                    utc(disk.get("rewrite_due_at")),
                ]
            )
        return lines

    def tables() -> list[RenderableType]:
        table = Table(
            "channel", "readers", "live", "history", "oldest", "last publish", title="ticker stats"
        )
        for name, info in channels.items():
            table.add_row(
                *_counts(name, info), id_relative(info["oldest_id"]), id_relative(info["last_id"])
            )
        if fleet is None:
            return [table]
        procs = Table(
            "process",
            "host",
            "pid",
            "readers",
            "uptime",
            title=f"{len(processes)} processes, {fleet['readers']} readers",
        )
        for p in processes:
            cells = (p["id"], p["host"], str(p["pid"]), str(p["readers"]), uptime(p["uptime_s"]))
            procs.add_row(*(Text(cell) for cell in cells))
        return [table, procs, *([_disk_line(disk)] if disk else [])]

    show(body, as_json=as_json, header=header, columns=STATS_COLUMNS, rows=rows, tables=tables)


def _counts(name: str, info: dict[str, Any]) -> list[str]:
    return [name, str(info["readers"]), str(info["live"]), str(info["history"])]


def _disk_line(disk: dict[str, Any]) -> str:
    """The AOF line of ``ticker stats``: state, last rewrite asked, its status, purges
    waiting for one, when it is due."""
    asked, due = disk.get("rewrite_asked_at"), disk.get("rewrite_due_at")
    status = disk.get("last_rewrite_status") or "-"
    return (
        f"disk: AOF {disk.get('aof')}; last rewrite asked "
        f"{relative(asked) if asked else 'never'} ({status}); "
        f"{disk.get('purges_waiting', 0)} purges waiting"
        + (f", rewrite due {relative(due)}" if due else "")
    )
