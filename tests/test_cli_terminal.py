"""The ``ticker`` command as git, gh and uv users expect it: ``--version``, ``-h``, shell
completion, exit codes, and errors that name the valid choices. Real subprocesses."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from tests.cli_helpers import (
    CLI_TIMEOUT,
    admin_env,
    cli_env,
    history,
    run,
    run_all,
    run_each,
    server_env,
    spawn,
)
from tests.helpers import TickerProcess, bearer, free_port, make_token, wait_until
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path) -> None:
    (tmp_path / "cli-state").mkdir(exist_ok=True)


def _commands(help_text: str) -> list[str]:
    """The command names in a ``--help``'s "Commands:" section."""
    names, inside = [], False
    for line in help_text.splitlines():
        if line.startswith("Commands:"):
            inside = True
        elif inside and line.startswith("  ") and line.strip():
            if not line.startswith("   "):
                names.append(line.split()[0])
        elif inside and line.strip():
            break
    return names


def test_version_prints_the_installed_package_version(tmp_path: Path) -> None:
    long, short = run_all(cli_env(tmp_path), ("--version",), ("-V",))
    for done in (long, short):
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"ticker {version('ticker')}\n"


def test_dash_h_is_help_on_every_command(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    top = run(env, "-h")
    assert top.returncode == 0, top.stderr
    assert top.stdout.startswith("Usage: ticker [OPTIONS] COMMAND")
    commands = _commands(top.stdout)
    assert {"serve", "post", "ls", "tail", "token"} <= set(commands), commands
    tokens = _commands(run(env, "token", "-h").stdout)
    assert {"create", "ls", "rotate", "revoke"} <= set(tokens), tokens
    asked = [(name, "-h") for name in commands] + [("token", name, "-h") for name in tokens]
    for args, done in zip(asked, run_all(env, *asked), strict=True):
        assert done.returncode == 0, (args, done.stderr)
        assert done.stdout.startswith(f"Usage: ticker {' '.join(args[:-1])} "), (args, done.stdout)


def test_show_completion_prints_a_script_for_bash_zsh_and_fish(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    bash, zsh, fish, other = run_all(
        env,
        ("--show-completion", "bash"),
        ("--show-completion", "zsh"),
        ("--show-completion", "fish"),
        ("--show-completion", "tcsh"),
    )
    for done in (bash, zsh, fish):
        assert done.returncode == 0, done.stderr
        assert "_TICKER_COMPLETE=complete_" in done.stdout, done.stdout
    assert "complete -o default -F _ticker_completion ticker" in bash.stdout
    assert zsh.stdout.startswith("#compdef ticker")
    assert other.returncode == 2 and "bash, zsh, fish" in other.stderr, other.stderr


def test_bash_completes_a_command_with_the_script_it_was_given(tmp_path: Path) -> None:
    """The script sourced into a real bash, TAB after `ticker to` and `ticker post --ch`."""
    env = cli_env(tmp_path)
    # The script runs `ticker`: a shim on PATH that is this interpreter's ticker.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "ticker"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m ticker "$@"\n')
    shim.chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    script = (
        "source <(ticker --show-completion bash)\n"
        "COMP_WORDS=(ticker to); COMP_CWORD=1; _ticker_completion ticker\n"
        'echo "${COMPREPLY[*]}"\n'
        "COMP_WORDS=(ticker post --ch); COMP_CWORD=2; _ticker_completion ticker\n"
        'echo "${COMPREPLY[*]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["token", "--channel"], done.stdout + done.stderr


# -- exit codes and errors ---------------------------------------------------------------


def test_exit_code_names_the_kind_of_refusal() -> None:
    from ticker.cli.console import exit_code

    assert [exit_code(s) for s in (0, 500, 502, 503, 401, 403, 400, 404, 409, 422, 429)] == [
        3, 3, 3, 3, 4, 4, 1, 1, 1, 1, 1,
    ]  # fmt: skip


def test_exit_codes_tell_usage_auth_refusal_and_no_service_apart(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    viewer = make_token(settings, "viewer", ["en"], role="viewer")
    env = server_env(ticker_server, tmp_path)
    away = cli_env(tmp_path, TICKER_URL=f"http://127.0.0.1:{free_port()}", TICKER_TOKEN="tk_x")
    cases = [
        (0, env, ("ls",)),
        (2, env, ("post",)),  # no headline
        (2, env, ("ls", "--bogus")),
        (2, cli_env(tmp_path, TICKER_CHANNELS="fr"), ("ls",)),
        (3, away, ("ls",)),
        (4, server_env(ticker_server, tmp_path, TICKER_TOKEN="tk_" + "x" * 43), ("post", "x")),
        (4, server_env(ticker_server, tmp_path, TICKER_TOKEN=viewer), ("post", "x")),
        (1, env, ("post", "x", "--urgency", "10")),  # 422
        (1, env, ("ls", "--channel", "fr")),  # 404
        (1, env, ("hold", "no-such-item")),  # 404
    ]
    results = run_each([(e, args) for _, e, args in cases])
    got = [(args, done.returncode) for (_, _, args), done in zip(cases, results, strict=True)]
    assert got == [(args, code) for code, _, args in cases], [r.stderr for r in results]
    assert history(ticker_server) == []


def test_errors_name_the_channels_and_where_the_token_came_from(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    viewer = make_token(settings, "viewer", ["en"], role="viewer")
    unknown, refused, bad = run_each(
        [
            (server_env(ticker_server, tmp_path), ("ls", "--channel", "fr")),
            (server_env(ticker_server, tmp_path, TICKER_TOKEN=viewer), ("post", "x")),
            (cli_env(tmp_path, TICKER_CHANNELS='[{"name": "en"'), ("ls",)),
        ]
    )
    names = ", ".join(c.name for c in settings.channels)
    assert unknown.stderr == f"error: unknown channel 'fr'; channels: {names}\n"
    assert refused.stderr.rstrip().endswith("(the token in TICKER_TOKEN)"), refused.stderr
    assert viewer not in refused.stderr
    assert bad.stderr == (
        "error: invalid settings: TICKER_CHANNELS: not valid JSON "
        "(Expecting ',' delimiter: line 1 column 15 (char 14))\n"
    )


def test_errors_into_a_pipe_are_not_wrapped_at_80_columns(tmp_path: Path) -> None:
    env = cli_env(tmp_path, TICKER_URL=f"http://127.0.0.1:{free_port()}")
    del env["COLUMNS"]  # as a CI job or a cron mail has it
    done = run(env, "ls")
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) > 80, done.stderr
    assert "`ticker serve`" in lines[0]


def test_a_kill_prints_no_expiry(ticker_server: TickerProcess, tmp_path: Path) -> None:
    env = server_env(ticker_server, tmp_path)
    posted = run(env, "post", "Bridge closed")
    assert posted.returncode == 0 and "expires in" in posted.stdout, posted.stderr
    uri = posted.stdout.split()[1]
    killed = run(env, "kill", uri)
    assert killed.returncode == 0, killed.stderr
    assert killed.stdout == f"killed {uri} (v2) on en, status canceled\n"


# -- serve ---------------------------------------------------------------------------------


def _lines(proc: subprocess.Popen[str], count: int, *, within: float) -> list[str]:
    """Up to ``count`` lines of a process's stdout, waiting ``within`` seconds at most
    (a reader thread: a select on a buffered pipe misses lines already buffered)."""
    stdout = proc.stdout
    assert stdout is not None
    got: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            got.put(line)

    threading.Thread(target=pump, daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + within
    while len(lines) < count and (left := deadline - time.monotonic()) > 0:
        try:
            lines.append(got.get(timeout=left))
        except queue.Empty:
            break
    return lines


def test_serve_on_its_own_redis_prints_the_bar_the_desk_and_the_token_file(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = cli_env(tmp_path, TICKER_LOG_FORMAT="console")  # a person at a terminal
    proc = spawn(env, "serve", "--port", str(port))
    try:
        lines = _lines(proc, 4, within=20.0)
    finally:
        proc.terminate()
        proc.communicate(timeout=CLI_TIMEOUT)
    token_file = Path(env["TICKER_STATE_DIR"]) / "dev-token"
    assert lines == [
        "ticker is ready:\n",
        f"  the bar   http://127.0.0.1:{port}/\n",
        f"  the desk  http://127.0.0.1:{port}/desk\n",
        f"  token     {token_file} (the desk's and the CLI's; keep it private)\n",
    ]


def test_with_json_logs_ready_is_one_log_line_and_a_configured_redis_has_no_token(
    ticker_server: TickerProcess,
) -> None:
    """``ticker_server`` logs JSON (its output is no terminal): a log shipper reads every
    line, so the ready message is a log record with the addresses as fields."""
    log = ticker_server.log
    assert log is not None

    def ready() -> list[dict[str, object]]:
        found = []
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"not a JSON line: {line!r}") from None
            if str(record.get("event", record.get("message", ""))).startswith("ticker is ready"):
                found.append(record)
        return found

    wait_until(lambda: bool(ready()), 10)  # logged just after its first 200
    [record] = ready()
    assert record["bar"] == f"{ticker_server.url}/"
    assert record["desk"] == f"{ticker_server.url}/desk"
    assert record["token_file"] is None


def test_the_ready_message_reaches_a_wildcard_bind_on_loopback() -> None:
    from ticker.server.announce import local_base

    assert local_base("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert local_base("::", 80) == "http://[::1]:80"
    assert local_base("192.0.2.7", 8000) == "http://192.0.2.7:8000"


# -- piped output and --json -----------------------------------------------------------------

UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def test_piped_listings_have_a_header_on_request_and_one_time_format(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    from ticker.cli.stats import STATS_COLUMNS
    from ticker.cli.views import AUDIT_COLUMNS, HISTORY_COLUMNS, LS_COLUMNS, QUEUE_COLUMNS

    env = server_env(ticker_server, tmp_path)
    assert run(env, "post", "On air", "--urgency", "2").returncode == 0
    assert run(env, "post", "Later", "--embargo", "2h").returncode == 0
    ls, queue_, history_, audit = run_all(
        env,
        ("ls", "--header"),
        ("queue", "--header"),
        ("history", "--header"),
        ("audit", "en", "--header"),
    )
    stats = run({**env, "TICKER_TOKEN": ticker_server.ops_secret()}, "stats", "--header")
    for done, columns in (
        (ls, LS_COLUMNS),
        (queue_, QUEUE_COLUMNS),
        (history_, HISTORY_COLUMNS),
        (audit, AUDIT_COLUMNS),
        (stats, STATS_COLUMNS),
    ):
        assert done.returncode == 0, done.stderr
        first, *rest = done.stdout.splitlines()
        assert first.split("\t") == list(columns)
        for line in rest:
            if not line.startswith(("process\t", "disk\t")):
                assert len(line.split("\t")) == len(columns), line
    (item,) = [line.split("\t") for line in ls.stdout.splitlines()[1:]]
    assert UTC_TIME.fullmatch(item[LS_COLUMNS.index("expires_at")]), item
    (waiting,) = [line.split("\t") for line in queue_.stdout.splitlines()[1:]]
    for column in ("embargoed_until", "updated_at"):
        assert UTC_TIME.fullmatch(waiting[QUEUE_COLUMNS.index(column)]), waiting
    en = next(line.split("\t") for line in stats.stdout.splitlines() if line.startswith("en\t"))
    assert UTC_TIME.fullmatch(en[STATS_COLUMNS.index("last_publish_at")]), en
    assert "ago" not in stats.stdout
    headerless = run(env, "ls")
    assert headerless.stdout.splitlines() == ls.stdout.splitlines()[1:]


def test_token_ls_takes_json_and_header_and_prints_utc_times(
    settings: Settings, tmp_path: Path
) -> None:
    from ticker.cli.tokens import TOKEN_COLUMNS

    make_token(settings, "desk-json", ["en", "es"])
    env = admin_env(settings, tmp_path)
    as_json, piped = run_all(env, ("token", "ls", "--json"), ("token", "ls", "--header"))
    assert as_json.returncode == 0 and piped.returncode == 0, as_json.stderr + piped.stderr
    (token,) = [t for t in json.loads(as_json.stdout)["tokens"] if t["name"] == "desk-json"]
    assert token["channels"] == ["en", "es"] and token["role"] == "editor"
    assert UTC_TIME.fullmatch(token["created_at"]) and token["expires_at"] is None
    assert set(token) == set(TOKEN_COLUMNS)
    first, *rest = piped.stdout.splitlines()
    assert first.split("\t") == list(TOKEN_COLUMNS)
    row = next(line.split("\t") for line in rest if line.startswith("desk-json\t"))
    assert UTC_TIME.fullmatch(row[TOKEN_COLUMNS.index("created_at")]), row


def test_token_create_rotate_and_revoke_print_json_with_the_secret_once(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    from ticker.cli.tokens import TOKEN_COLUMNS

    env = admin_env(settings, tmp_path)
    old = make_token(settings, "rotated-json", ["*"], "ops")
    make_token(settings, "gone-json", ["en"])
    created, rotated, revoked, missing = run_all(
        env,
        ("token", "create", "scraper-json", "--role", "ops", "--channel", "*", "--json"),
        ("token", "rotate", "rotated-json", "--grace", "1h", "--json"),
        ("token", "revoke", "gone-json", "--json"),
        ("token", "revoke", "nobody-json", "--json"),
    )
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    secret = token.pop("secret")
    assert set(token) == set(TOKEN_COLUMNS)
    assert (token["name"], token["role"], token["channels"]) == ("scraper-json", "ops", ["*"])
    assert UTC_TIME.fullmatch(token["created_at"]) and token["status"] == "active"
    assert secret not in created.stderr and "not shown again" in created.stderr

    assert rotated.returncode == 0, rotated.stderr
    after = json.loads(rotated.stdout)
    new = after.pop("secret")
    assert new != old and new not in rotated.stderr and set(after) == set(TOKEN_COLUMNS)
    assert after["name"] == "rotated-json" and UTC_TIME.fullmatch(after["old_secret_until"])
    # What Prometheus sends from its credentials file: each secret works on /metrics, the
    # rotated-out one through its grace.
    for works in (secret, new, old):
        reply = httpx.get(f"{ticker_server.url}/metrics", headers=bearer(works), timeout=10)
        assert reply.status_code == 200 and "ticker_build_info" in reply.text

    assert (revoked.returncode, json.loads(revoked.stdout)) == (
        0,
        {"name": "gone-json", "revoked": True},
    )
    assert (missing.returncode, missing.stdout) == (1, "")
    assert "no token named 'nobody-json'" in missing.stderr


def _tail_first_line(env: dict[str, str]) -> str:
    proc = spawn(env, "tail")
    try:
        return "".join(_lines(proc, 1, within=15.0))
    finally:
        proc.terminate()
        proc.communicate(timeout=CLI_TIMEOUT)


def test_tail_json_prints_json_lines_and_piped_tail_utc_times(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    env = server_env(ticker_server, tmp_path)
    assert run(env, "post", "Live now").returncode == 0
    proc = spawn(env, "tail", "--json")
    try:
        lines = _lines(proc, 1, within=15.0)  # the current items first
    finally:
        proc.terminate()
        proc.communicate(timeout=CLI_TIMEOUT)
    plain = _tail_first_line(env)
    assert UTC_TIME.fullmatch(plain.split()[0]) and " ITEM u5 Live now " in plain, plain
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["item"], events
    assert events[0]["data"]["headline"] == "Live now" and events[0]["id"]


def test_the_readme_lists_each_commands_piped_columns_as_the_code_prints_them() -> None:
    from ticker.cli.stats import STATS_COLUMNS
    from ticker.cli.tokens import TOKEN_COLUMNS
    from ticker.cli.views import AUDIT_COLUMNS, HISTORY_COLUMNS, LS_COLUMNS, QUEUE_COLUMNS

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    documented = {
        cells[0].strip("` "): cells[1].split("`")[1]
        for line in readme.splitlines()
        if line.startswith("| `")
        and len(cells := line.strip("|").split("|")) >= 2
        and cells[1].strip().startswith("`")
    }
    for command, columns in (
        ("ls", LS_COLUMNS),
        ("queue", QUEUE_COLUMNS),
        ("history", HISTORY_COLUMNS),
        ("audit", AUDIT_COLUMNS),
        ("stats", STATS_COLUMNS),
        ("token ls", TOKEN_COLUMNS),
    ):
        assert documented.get(command) == " ".join(columns), command
