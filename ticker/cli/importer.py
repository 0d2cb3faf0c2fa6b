"""``ticker import`` at the terminal: a progress bar, failures as they come, then a summary
line or, with ``--json``, one JSON document of what each line became; and the exit code.
``bulk.py`` does the work.

The exit code is the one every command uses (``console.exit_code``), for the failure that
matters most:
- the run stopped on a failure every further line would meet (no service, ``5xx``, ``401``,
  still rate-limited): that failure's code, ``3``, ``4`` or ``1``;
- otherwise, when some lines were refused and the rest went in: ``4`` if a line's token
  was not allowed (``403``, a channel it may not write), else ``1``;
- ``0`` when every line is in (imported now or by an earlier run), ``2`` when the input
  cannot be read, and ``130`` when interrupted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ticker.cli.console import AUTH, OK, REFUSED, USAGE, err, exit_code, load_settings, out

if TYPE_CHECKING:
    from rich.console import Console

    from ticker.cli.bulk import Result, Summary

# Every `ticker` run imports this module (it defines `ticker import`): the progress bar,
# the HTTP client and bulk.py load inside the command.

INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C
_OUTCOME = {"imported": "imported", "replayed": "already_imported", "failed": "failed"}


def import_items(
    file: Annotated[str, typer.Argument(help="JSON Lines: a POST body per line; - is stdin.")],
    channel: Annotated[
        str, typer.Option("--channel", "-c", help='For lines without a "channel" field.')
    ] = "en",
    concurrency: Annotated[
        int,
        typer.Option(
            min=1, max=16, metavar="N", help="Requests in flight (1-16); above 1, order is lost."
        ),
    ] = 1,
    stop_on_error: Annotated[
        bool, typer.Option("--stop-on-error", help="Stop at the first failed line.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print each line's item (uri, version) or error as JSON."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Post lines whose headline was just posted, too."),
    ] = False,
) -> None:
    """Post items from a JSON Lines file; a re-run posts nothing twice.

    Lines go in file order (with --concurrency 1), so the last line is the newest item.
    """
    from ticker.cli.client import resolve

    code = import_file(
        file,
        channel=channel,
        concurrency=concurrency,
        stop_on_error=stop_on_error,
        force=force,
        server=resolve(load_settings()),
        out=out,
        err=err,
        json_out=as_json,
    )
    if code:
        raise typer.Exit(code)


def import_exit(summary: Summary, failures: list[Result]) -> int:
    """How an import ends: see the module docstring."""
    if summary.stopped == "interrupted":
        return INTERRUPTED
    if summary.fatal is not None:
        return exit_code(summary.fatal.status or 0)
    codes = {REFUSED if r.status is None else exit_code(r.status) for r in failures}
    return AUTH if AUTH in codes else REFUSED if codes else OK


def as_json(summary: Summary, results: list[Result]) -> dict[str, Any]:
    """The run as JSON: the counts, and per line what it became (its item's channel, uri
    and version) or why it failed (the service's status, or null when never sent)."""
    lines = []
    for result in sorted(results, key=lambda r: r.number):
        line: dict[str, Any] = {"line": result.number, "outcome": _OUTCOME[result.outcome]}
        if result.item is not None:
            line |= {k: result.item.get(k) for k in ("channel", "uri", "version")}
        else:
            line |= {"status": result.status, "message": result.message}
        lines.append(line)
    return {
        "imported": summary.imported,
        "already_imported": summary.replayed,
        "failed": summary.failed,
        "not_attempted": summary.not_attempted,
        "blank": summary.blank,
        "rate_limited": summary.rate_limited,
        "stopped": summary.stopped or None,
        "elapsed_s": round(summary.elapsed_s, 3),
        "lines": lines,
    }


def import_file(
    source: str,
    *,
    channel: str,
    concurrency: int,
    stop_on_error: bool,
    server: tuple[str, str | None, str],
    out: Console,
    err: Console,
    json_out: bool = False,
    force: bool = False,
) -> int:
    """``ticker import``; returns the exit code (module docstring)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from ticker.cli.bulk import InputError, Summary, parse, plural, read, run
    from ticker.cli.client import Client

    try:
        entries, blank = parse(read(source), channel=channel)
    except InputError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return USAGE
    if not entries:
        if json_out:
            print(json.dumps(as_json(Summary(lines=0, blank=blank), [])))
        else:
            out.print("nothing to import" + (f" ({plural(blank, 'blank line')})" if blank else ""))
        return OK
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    task = bar.add_task("importing", total=len(entries))
    results: list[Result] = []

    def on_result(result: Result) -> None:
        results.append(result)
        bar.update(task, advance=1, description="importing")
        if result.outcome == "failed":
            line = f"[red]line {result.number}:[/red] {escape(result.message)}"
            bar.console.print(line, soft_wrap=True)

    def on_wait(seconds: float) -> None:
        bar.update(task, description=f"rate-limited, waiting {seconds:.0f} s")

    with bar, Client(*server, on_wait=on_wait) as client:
        summary = run(
            client,
            entries,
            blank=blank,
            concurrency=concurrency,
            stop_on_error=stop_on_error,
            force=force,
            on_result=on_result,
        )
    if json_out:
        print(json.dumps(as_json(summary, results), ensure_ascii=False))
    else:
        style = "red" if summary.failed or summary.stopped else "green"
        out.print(f"[{style}]{escape(summary.text())}[/{style}]", soft_wrap=True)
    again = "the same import again; lines already imported are not posted twice."
    if summary.stopped == "interrupted":
        err.print(f"interrupted: to finish, run {again}", soft_wrap=True)
    elif summary.stopped:
        err.print(f"stopped {escape(summary.stopped)}", soft_wrap=True)
        err.print(f"fix that, then run {again}", soft_wrap=True)
    return import_exit(summary, [r for r in results if r.outcome == "failed"])
