"""``ticker import``: JSON Lines through the real API, by a real subprocess, as a desk runs it."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import (
    CLI_TIMEOUT,
    cli_env,
    current,
    history,
    run,
    run_all,
    run_each,
    server_env,
)
from tests.faults.proxy import Proxy
from tests.helpers import TickerProcess, free_port, make_token
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path) -> None:
    (tmp_path / "cli-state").mkdir(exist_ok=True)


def jsonl(tmp_path: Path, *lines: dict[str, Any] | str, name: str = "backlog.jsonl") -> Path:
    """A file of ``lines``: dicts as JSON, strings as written."""
    path = tmp_path / name
    path.write_text(
        "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines),
        encoding="utf-8",
    )
    return path


def headlines(server: TickerProcess, channel: str) -> list[str]:
    """The channel's headlines in the order they were posted (the API lists newest first)."""
    return [item["headline"] for item in reversed(current(server, channel))]


def run_stdin(env: dict[str, str], data: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ticker", *args],
        env=env,
        input=data,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        cwd=Path(env["TICKER_STATE_DIR"]).parent,
        check=False,
    )


def test_import_posts_every_line_in_file_order_across_channels(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    path = jsonl(
        tmp_path,
        {
            "headline": "Storm reaches the coast",
            "urgency": 2,
            "regions": ["europe"],
            "source": "Met Office",
        },
        {"headline": "La tormenta llega a la costa", "channel": "es"},
        "",
        {"headline": "Ferries cancelled", "channel": "en", "categories": ["transport"]},
        {"headline": "Se cancelan los ferris", "channel": "es", "urgency": 3},
        {"headline": "Schools to close early", "link": "https://example.com/schools"},
    )
    done = run(server_env(ticker_server, tmp_path), "import", str(path), "--channel", "en")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 5, failed 0, skipped 1 blank line in "), done.stdout
    assert done.stdout.count("\n") == 1  # one line, not a progress bar: stderr is no terminal
    assert ticker_server.token not in done.stdout + done.stderr

    assert headlines(ticker_server, "en") == [
        "Storm reaches the coast",
        "Ferries cancelled",
        "Schools to close early",
    ]
    assert headlines(ticker_server, "es") == [
        "La tormenta llega a la costa",
        "Se cancelan los ferris",
    ]
    first = current(ticker_server, "en")[-1]
    assert (first["urgency"], first["regions"], first["source"]) == (2, ["europe"], "Met Office")
    assert first["author"] == "server-editor" and first["language"] == "en"
    assert current(ticker_server, "es")[0]["urgency"] == 3


def test_bad_lines_are_reported_with_their_numbers_and_the_rest_is_imported(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    path = jsonl(
        tmp_path,
        {"headline": "first"},
        '{"headline": "unterminated',
        {"headline": "third"},
        {"headline": "x" * 300},
        {"headline": "to nowhere", "channel": "xx"},
        '["not", "an", "object"]',
        {"headline": "seventh", "urgency": 10},
        {"headline": "last"},
    )
    done = run(server_env(ticker_server, tmp_path), "import", str(path))
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("imported 3, failed 5 in "), done.stdout
    errors = done.stderr.splitlines()
    assert errors == [
        "line 2: not JSON: Unterminated string starting at (column 14)",
        "line 4: rejected (422): headline: must be at most 280 characters (got 300)",
        "line 5: rejected (404): unknown channel 'xx'; channels: en, ar, es",
        "line 6: not a JSON object",
        "line 7: rejected (422): urgency: must be 1 (most urgent) to 9",
    ], done.stderr
    assert headlines(ticker_server, "en") == ["first", "third", "last"]


def test_stop_on_error_stops_at_the_first_failed_line(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    path = jsonl(
        tmp_path,
        {"headline": "first"},
        {"headline": "second", "ttl": "5parsecs"},
        {"headline": "third"},
    )
    done = run(server_env(ticker_server, tmp_path), "import", str(path), "--stop-on-error")
    assert done.returncode == 1
    assert done.stdout.startswith("imported 1, failed 1, not attempted 1 in "), done.stdout
    assert "line 2: rejected (422): ttl:" in done.stderr
    assert "stopped at line 2 (--stop-on-error)" in done.stderr
    assert headlines(ticker_server, "en") == ["first"]


def test_running_the_same_file_again_posts_nothing_twice(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    env = server_env(ticker_server, tmp_path)
    lines: list[dict[str, Any] | str] = [
        {"headline": "Polls open"},
        {"headline": "Turnout high", "urgency": 0},  # rejected; fixed below
        {"headline": "Polls close"},
        {"headline": "Polls close"},  # the same item twice is two items
        {"headline": "Las urnas cierran", "channel": "es"},
    ]
    path = jsonl(tmp_path, *lines)
    first = run(env, "import", str(path))
    assert first.returncode == 1 and "line 2: rejected (422): urgency" in first.stderr
    # ... and the second "Polls close" has the headline just posted (dupes.py).
    assert "line 4: rejected (409): server-editor posted the same headline" in first.stderr
    assert '"force": true' in first.stderr
    assert first.stdout.startswith("imported 3, failed 2 "), first.stdout

    # --force posts it; what the first run imported is replayed, not posted again.
    again = run(env, "import", str(path), "--concurrency", "3", "--force", "--json")
    assert again.returncode == 1
    told = json.loads(again.stdout)  # one document: what each line became
    counts = {k: told[k] for k in ("imported", "already_imported", "failed", "not_attempted")}
    assert counts == {"imported": 1, "already_imported": 3, "failed": 1, "not_attempted": 0}
    assert [(ln["line"], ln["outcome"]) for ln in told["lines"]] == [
        (1, "already_imported"),
        (2, "failed"),
        (3, "already_imported"),
        (4, "imported"),
        (5, "already_imported"),
    ]
    assert told["lines"][1]["status"] == 422 and "urgency" in told["lines"][1]["message"]
    on_air = {
        (i["channel"], i["uri"], i["version"])
        for ch in ("en", "es")
        for i in current(ticker_server, ch)
    }
    assert {
        (ln["channel"], ln["uri"], ln["version"])
        for ln in told["lines"]
        if ln["outcome"] != "failed"
    } == on_air

    # The desk fixes the bad line and drops the first: the rest are still recognised.
    path = jsonl(tmp_path, {"headline": "Turnout high", "urgency": 2}, *lines[2:])
    fixed = run(env, "import", str(path))
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith("imported 1, already imported 3, failed 0 "), fixed.stdout

    assert headlines(ticker_server, "en") == [
        "Polls open",
        "Polls close",
        "Polls close",
        "Turnout high",
    ]
    assert len(history(ticker_server, "en")) == 4
    assert headlines(ticker_server, "es") == ["Las urnas cierran"]


@pytest.mark.parametrize(
    "ticker_server_env", [{"TICKER_WRITE_RATE_PER_MINUTE": "600", "TICKER_WRITE_BURST": "2"}]
)
@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_rate_limit_is_waited_out_and_every_line_lands(
    ticker_server: TickerProcess, tmp_path: Path, concurrency: str
) -> None:
    # Two writes at once, then one per 100 ms, but Retry-After is in whole seconds: six
    # lines meet a 429 at least twice, and every worker waits it out.
    wanted = [f"Update {n}" for n in range(1, 7)]
    path = jsonl(tmp_path, *({"headline": h} for h in wanted))
    done = run(
        server_env(ticker_server, tmp_path), "import", str(path), "--concurrency", concurrency
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 6, failed 0, rate-limited "), done.stdout
    if concurrency == "1":
        assert headlines(ticker_server, "en") == wanted
    else:
        assert sorted(headlines(ticker_server, "en")) == wanted
    assert len(history(ticker_server, "en")) == 6  # each line once, however often retried


@pytest.mark.anyio
async def test_a_lost_reply_is_retried_without_posting_the_line_twice(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    path = jsonl(tmp_path, *({"headline": f"Item {n}"} for n in range(1, 4)))
    async with Proxy(ticker_server.port) as proxy:
        proxy.drop_replies = 1  # the first post lands, but its reply never arrives
        env = server_env(ticker_server, tmp_path, TICKER_URL=f"http://127.0.0.1:{proxy.port}")
        done = await asyncio.to_thread(run, env, "import", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 3, failed 0 in "), done.stdout
    assert headlines(ticker_server, "en") == ["Item 1", "Item 2", "Item 3"]
    assert len(history(ticker_server, "en")) == 3


def test_dash_reads_stdin(ticker_server: TickerProcess, tmp_path: Path) -> None:
    data = '{"headline": "From a pipe"}\n\n{"headline": "Desde una tubería", "channel": "es"}'
    done = run_stdin(server_env(ticker_server, tmp_path), data, "import", "-")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported 2, failed 0, skipped 1 blank line "), done.stdout
    assert headlines(ticker_server, "en") == ["From a pipe"]
    assert headlines(ticker_server, "es") == ["Desde una tubería"]


def test_a_wrong_token_stops_the_import_at_once(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    wrong = "tk_" + "y" * 43
    path = jsonl(tmp_path, *({"headline": f"line {n}"} for n in range(5)))
    done = run(
        server_env(ticker_server, tmp_path, TICKER_TOKEN=wrong),
        "import",
        str(path),
        "--concurrency",
        "2",
    )
    # Both lines in flight fail; the other three are not even tried. Exit 4: the token.
    assert done.returncode == 4
    assert done.stdout.startswith("imported 0, failed 2, not attempted 3 in "), done.stdout
    told = ": HTTP 401: unknown or revoked token (the token in TICKER_TOKEN)\nfix that, then run"
    assert told in done.stderr
    assert wrong not in done.stdout + done.stderr
    assert history(ticker_server, "en") == []


def test_no_input_is_an_error_and_an_empty_one_is_nothing_to_do(tmp_path: Path) -> None:
    env = cli_env(tmp_path, TICKER_URL=f"http://127.0.0.1:{free_port()}", TICKER_TOKEN="tk_x")
    empty = jsonl(tmp_path, name="empty.jsonl")
    empty.write_bytes(b"")
    blank = jsonl(tmp_path, "", "   ", name="blank.jsonl")
    missing, nothing, only_blank, blank_json = run_all(
        env,
        ("import", str(tmp_path / "missing.jsonl")),
        ("import", str(empty)),
        ("import", str(blank)),
        ("import", str(blank), "--json"),
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"error: cannot read {tmp_path / 'missing.jsonl'}: ")
    assert "Traceback" not in missing.stderr
    assert (nothing.returncode, nothing.stdout) == (0, "nothing to import\n")
    assert (only_blank.returncode, only_blank.stdout) == (0, "nothing to import (2 blank lines)\n")
    assert blank_json.returncode == 0
    assert json.loads(blank_json.stdout) | {"elapsed_s": 0} == {
        "imported": 0,
        "already_imported": 0,
        "failed": 0,
        "not_attempted": 0,
        "blank": 2,
        "rate_limited": 0,
        "stopped": None,
        "elapsed_s": 0,
        "lines": [],
    }


def test_the_exit_code_says_which_failure_matters_most(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    en_only = make_token(settings, "import-en-only", ["en"])
    path = jsonl(
        tmp_path,
        {"headline": "In English"},
        {"headline": "En español", "channel": "es"},  # 403: not this token's channel
        {"headline": "Too urgent", "urgency": 0},  # 422
    )
    bad = jsonl(tmp_path, {"headline": "fine"}, "not json", name="bad.jsonl")
    nowhere = f"http://127.0.0.1:{free_port()}"
    refused, bad_lines, unreachable = run_each(
        [
            (server_env(ticker_server, tmp_path, TICKER_TOKEN=en_only), ("import", str(path))),
            (server_env(ticker_server, tmp_path), ("import", str(bad), "--json")),
            (server_env(ticker_server, tmp_path, TICKER_URL=nowhere), ("import", str(path))),
        ]
    )
    # Some lines refused, one of them for the token: 4, and the rest went in.
    assert refused.returncode == 4, refused.stderr
    assert "line 2: rejected (403)" in refused.stderr and "line 3: rejected (422)" in refused.stderr
    assert refused.stdout.startswith("imported 1, failed 2 in "), refused.stdout
    # A line refused here, never sent: 1; its status is null.
    assert bad_lines.returncode == 1, bad_lines.stderr
    failed = [ln for ln in json.loads(bad_lines.stdout)["lines"] if ln["outcome"] == "failed"]
    assert failed == [
        {"line": 2, "outcome": "failed", "status": None, "message": failed[0]["message"]}
    ]
    assert failed[0]["message"].startswith("not JSON")
    # No service: the run stops at once, 3 (try again later).
    assert unreachable.returncode == 3, unreachable.stderr
    assert "not attempted 2" in unreachable.stdout
    assert sorted(headlines(ticker_server, "en")) == ["In English", "fine"]  # two runs at once


def test_a_terminal_gets_a_progress_bar(ticker_server: TickerProcess, tmp_path: Path) -> None:
    path = jsonl(tmp_path, *({"headline": f"Item {n}"} for n in range(3)))
    env = server_env(ticker_server, tmp_path, TERM="xterm", COLUMNS="100")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ticker", "import", str(path)],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
        )
    finally:
        os.close(secondary)
    screen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout, _ = proc.communicate(timeout=CLI_TIMEOUT)
        reader.join(5)
    finally:
        os.close(primary)
    assert proc.returncode == 0
    assert stdout.startswith("imported 3, failed 0 in "), stdout
    text = screen.decode("utf-8", "replace")
    assert "importing" in text and "3/3" in text, text
    assert ticker_server.token not in text
