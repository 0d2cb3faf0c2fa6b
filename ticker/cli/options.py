"""Options and arguments that several ``ticker`` commands take, written once."""

from __future__ import annotations

from typing import Annotated

import typer

Channel = Annotated[str, typer.Option("--channel", "-c", help="Channel (edition).")]
Uri = Annotated[str, typer.Argument(help="The item's uri, as `post` and `ls` print it.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON reply instead.")]
Urgency = Annotated[
    int, typer.Option("--urgency", "-u", metavar="1-9", help="1 (most urgent) to 9.")
]
Source = Annotated[
    str | None, typer.Option("--source", "-s", help='Who says so, e.g. "Dutch Police".')
]
Regions = Annotated[
    list[str] | None,
    typer.Option("--region", "-r", help="Region slug; repeat for more: -r europe -r mena."),
]
Categories = Annotated[
    list[str] | None,
    typer.Option("--category", help="Category slug; repeat for more."),
]
Link = Annotated[str | None, typer.Option("--link", "-l", metavar="URL", help="http(s) link.")]
Ttl = Annotated[
    str | None,
    typer.Option(metavar="DURATION", help="How long it stays on the ticker: 30m, 6h, 1d."),
]
ExpiresAt = Annotated[
    str | None,
    typer.Option(metavar="TIME", help="When it leaves the ticker (RFC 3339, with a zone)."),
]
# Sent as typed: the service reads it (ticker/domain/when.py), so every client means the same.
Embargo = Annotated[
    str | None,
    typer.Option(
        metavar="WHEN",
        help="Not shown before then: a duration (30m, 2h), a clock time (18:30, in the"
        " channel's time zone) or an RFC 3339 time.",
    ),
]
