"""The ``ticker`` command as an editor runs it: real subprocesses against a real server,
checking exit codes, what is printed, and what reached the API."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.cli_helpers import (
    CLI_TIMEOUT,
    admin_env,
    cli_env,
    current,
    history,
    run,
    run_all,
    run_each,
    server_env,
    spawn,
)
from tests.helpers import TickerProcess, free_port, make_token
from ticker.cli.times import utc
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module


@pytest.fixture(scope="module")
def module_server_env() -> dict[str, str]:
    # en shows kill notices: `tail` prints the note a reader gets.
    channels = [{"name": "en", "kill_notices": True}, {"name": "ar", "language": "ar"}]
    return {"TICKER_CHANNELS": json.dumps([*channels, {"name": "es", "language": "es"}])}


HEADLINE = "Rotterdam shooter arrested"


def uri_from(line: str) -> str:
    """`posted URI (v1) on en, ...` -> URI."""
    words = line.split()
    assert len(words) > 2 and words[2].startswith("(v"), line
    return words[1]


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path) -> None:
    (tmp_path / "cli-state").mkdir(exist_ok=True)


# -- the editor's desk ---------------------------------------------------------------


def test_post_publishes_the_item_with_every_option(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    env = server_env(ticker_server, tmp_path)
    plain, as_json, advisory = run_all(
        env,
        (
            "post",
            HEADLINE,
            "--channel",
            "en",
            "--urgency",
            "2",
            "--region",
            "europe",
            "--source",
            "Dutch Police",
            "--link",
            "https://example.com/rotterdam",
        ),
        ("post", "Second headline, as JSON", "--channel", "en", "--json"),
        ("post", "Dutch PM statement expected 18:30", "--advisory"),
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("posted "), plain.stdout
    assert "on en" in plain.stdout and "status usable" in plain.stdout
    uri = uri_from(plain.stdout)

    assert as_json.returncode == 0, as_json.stderr
    posted = json.loads(as_json.stdout)
    assert posted["headline"] == "Second headline, as JSON"
    assert posted["channel"] == "en" and posted["version"] == 1

    listed = {i["uri"]: i for i in current(ticker_server)}
    assert set(listed) == {uri, posted["uri"]}
    item = listed[uri]
    assert item["headline"] == HEADLINE and item["urgency"] == 2
    assert item["regions"] == ["europe"] and item["source"] == "Dutch Police"
    assert item["link"] == "https://example.com/rotterdam"
    assert item["author"] == "server-editor"
    assert listed[posted["uri"]] == {**posted, "reach": 0}  # the desk's view counts readers

    # --advisory: a note for the desk, never on the ticker (not in `listed` above).
    assert advisory.returncode == 0, advisory.stderr
    assert advisory.stdout.startswith("posted ") and "an advisory (never on air)" in advisory.stdout
    r = httpx.get(
        f"{ticker_server.url}/channels/en/items",
        headers={"Authorization": f"Bearer {ticker_server.token}"},
        timeout=10,
    )
    assert [(a["uri"], a["kind"]) for a in r.json()["advisories"]] == [
        (uri_from(advisory.stdout), "advisory")
    ]


def test_a_duplicate_post_names_the_other_item_and_force_posts_it(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    first = ticker_server.post("en", headline=HEADLINE, source="Dutch Police")
    refused, forced = run_all(
        server_env(ticker_server, tmp_path),
        ("post", "rotterdam  shooter arrested."),
        ("post", "ROTTERDAM SHOOTER ARRESTED", "--force", "--json"),
    )
    assert forced.returncode == 0, forced.stderr
    newest = json.loads(forced.stdout)["uri"]
    assert refused.returncode == 1 and refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert lines[0].startswith("error: not posted: server-editor posted the same headline ")
    # The newest item with that headline: the first, or the forced one if it won the race.
    if first["uri"] in lines[0]:
        assert lines[1] == f"  Dutch Police: {HEADLINE}"
    else:
        assert newest in lines[0] and lines[1] == "  ROTTERDAM SHOOTER ARRESTED"
    assert "on en, status usable" in lines[0]
    assert "--force" in lines[-1] and len(lines) == 3
    assert {i["uri"] for i in current(ticker_server)} == {first["uri"], newest}


def test_correct_hold_release_and_kill(ticker_server: TickerProcess, tmp_path: Path) -> None:
    env = server_env(ticker_server, tmp_path)
    uri = ticker_server.post("en", headline="Shooter at large in Rotterdam")["uri"]

    corrected = run(env, "correct", uri, HEADLINE, "--notice")
    assert corrected.returncode == 0, corrected.stderr
    assert corrected.stdout.startswith(f"corrected {uri} (v2)"), corrected.stdout
    assert "marked as corrected" in corrected.stdout
    now = current(ticker_server)
    assert [(i["uri"], i["headline"], i["version"]) for i in now] == [(uri, HEADLINE, 2)]
    assert now[0]["corrected_at"] == now[0]["updated_at"]

    held = run(env, "hold", uri)
    assert held.returncode == 0, held.stderr
    assert held.stdout.startswith(f"held {uri} (v3)") and "withheld" in held.stdout
    assert current(ticker_server) == []

    released = run(env, "release", uri, "--json")
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["status"] == "usable"
    assert [i["headline"] for i in current(ticker_server)] == [HEADLINE]

    killed = run(env, "kill", uri)
    assert killed.returncode == 0, killed.stderr
    assert killed.stdout.startswith(f"killed {uri}") and "canceled" in killed.stdout
    assert current(ticker_server) == []


def test_ls_shows_the_current_headlines(ticker_server: TickerProcess, tmp_path: Path) -> None:
    item = ticker_server.post(
        "en", headline=HEADLINE, source="Dutch Police", regions=["europe"], urgency=2
    )
    ticker_server.post("es", headline="Detenido el tirador de Róterdam")
    done = run(server_env(ticker_server, tmp_path), "ls", "--channel", "en")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{item['uri']}\t2\tDutch Police: {HEADLINE}\teurope\t{utc(item['expires_at'])}\t-\t0"
    ]


def test_ls_prints_headlines_with_square_brackets_as_written(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    # Brackets are ordinary text in a headline; the terminal must not treat them as markup.
    ticker_server.post("en", headline="[VIDEO] Markets [bold]rally[/bold]")
    ticker_server.post("en", headline="Oil [/b] prices fall")
    done = run(server_env(ticker_server, tmp_path), "ls", "--channel", "en")
    assert done.returncode == 0, done.stderr
    assert "[VIDEO] Markets [bold]rally[/bold]" in done.stdout
    assert "Oil [/b] prices fall" in done.stdout


def test_tail_prints_a_new_item_as_it_is_posted(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    proc = spawn(server_env(ticker_server, tmp_path), "tail", "--channel", "en")
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []

    def wait_for(text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in seen):
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise AssertionError(f"tail never printed {text!r}; got {seen}")
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=min(left, 0.5)))

    try:
        # Whether it connects before or after this post, tail prints the item (the current
        # items come first on a fresh connection); once it has, tail is surely connected.
        ticker_server.post("en", headline="Police cordon off Rotterdam centre")
        wait_for("Police cordon off Rotterdam centre")
        item = ticker_server.post("en", headline=HEADLINE, source="Dutch Police", urgency=2)
        wait_for(HEADLINE)
        line = next(line for line in seen if HEADLINE in line)
        assert "ITEM" in line and "u2" in line and f"Dutch Police: {HEADLINE}" in line
        assert f"{item['uri']} v1" in line
        bad, killed = run_all(
            server_env(ticker_server, tmp_path),
            ("kill", item["uri"], "--notice", "Withdrawn\nby the desk"),
            ("kill", item["uri"], "--notice", "Withdrawn: not confirmed"),
        )
        assert bad.returncode == 1 and bad.stderr.startswith("error: notice: "), bad.stderr
        assert killed.returncode == 0, killed.stderr
        assert 'notice "Withdrawn: not confirmed"' in killed.stdout
        wait_for("REMOVE")
        line = next(line for line in seen if "REMOVE" in line)
        assert f'{item["uri"]} (kill) "Withdrawn: not confirmed"' in line, seen
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            assert pipe is not None
            pipe.close()


# -- tokens --------------------------------------------------------------------------


def test_token_create_ls_revoke(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    admin = admin_env(settings, tmp_path)
    created = run(admin, "token", "create", "desk-amsterdam", "--channel", "en", "--channel", "ar")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("tk_") and "\n" not in secret, created.stdout
    assert "not shown again" in created.stderr and secret not in created.stderr

    def post(channel: str) -> httpx.Response:
        return httpx.post(
            f"{ticker_server.url}/channels/{channel}/items",
            json={"headline": f"from Amsterdam to {channel}"},
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,
        )

    r = post("en")
    assert r.status_code == 201, r.text
    assert r.json()["author"] == "desk-amsterdam"
    assert post("ar").status_code == 201
    assert post("es").status_code == 403

    listed = run(admin, "token", "ls")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "desk-amsterdam" in line)
    assert row.split("\t")[2] == "ar,en", row
    assert "server-editor" in listed.stdout
    assert secret not in listed.stdout + listed.stderr
    assert secret[3:20] not in listed.stdout + listed.stderr

    revoked = run(admin, "token", "revoke", "desk-amsterdam")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked 'desk-amsterdam'" in revoked.stdout
    after = post("en")
    assert after.status_code == 401 and "unknown or revoked token" in after.text
    assert len(current(ticker_server)) == 1


# -- what goes wrong -----------------------------------------------------------------


def test_bad_posts_are_refused_with_a_message_and_nothing_is_written(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    cases = [
        ("headline", ("post", "")),
        ("urgency", ("post", "x", "--urgency", "10")),
        ("link", ("post", "x", "--link", "javascript:alert(1)")),
        ("ttl", ("post", "x", "--ttl", "5parsecs")),
        ("ttl", ("post", "x", "--ttl", "99999999999999d")),  # too big, not a crash
        ("regions", ("post", "x", "--region", "[/x]")),  # brackets are not terminal markup
    ]
    results = run_all(server_env(ticker_server, tmp_path), *(args for _, args in cases))
    wrong = [
        (args, done.returncode, done.stderr[-300:])
        for (field, args), done in zip(cases, results, strict=True)
        if done.returncode != 1
        or done.stdout
        or "Traceback" in done.stderr
        or not done.stderr.startswith("error:")
        or field not in done.stderr
    ]
    assert wrong == []
    assert current(ticker_server) == []
    assert history(ticker_server) == []


def test_a_wrong_token_is_refused(ticker_server: TickerProcess, tmp_path: Path) -> None:
    wrong = "tk_" + "x" * 43
    done = run(server_env(ticker_server, tmp_path, TICKER_TOKEN=wrong), "post", HEADLINE)
    assert done.returncode == 4
    assert done.stderr == "error: unknown or revoked token (the token in TICKER_TOKEN)\n"
    assert wrong not in done.stdout + done.stderr
    assert history(ticker_server) == []


def test_a_command_with_no_service_gives_up_within_seconds_and_says_what_to_do(
    tmp_path: Path,
) -> None:
    # A post is retried on a 503 (with its Idempotency-Key), but a refused connection means
    # nothing listens there: a few quick tries, then the hint, not 10 s of backoff.
    url = f"http://127.0.0.1:{free_port()}"
    env = cli_env(tmp_path, TICKER_URL=url, TICKER_TOKEN="tk_whatever")
    started = time.monotonic()
    posted, corrected = run_all(env, ("post", HEADLINE), ("correct", "some-uri", HEADLINE))
    took = time.monotonic() - started
    for done in (posted, corrected):
        assert done.returncode == 3
        assert done.stderr == (
            f"error: no ticker service answers at {url}; start one with `ticker serve` "
            "(or set TICKER_URL to where it runs)\n"
        )
    assert took < 8, f"took {took:.1f} s (the full backoff was ~10 s)"


def test_the_client_tries_a_refused_connection_only_a_few_times() -> None:
    from ticker.cli.client import CONNECT_BUDGET_S, Client, ClientError

    with (
        Client(f"http://127.0.0.1:{free_port()}", "tk_whatever") as client,
        pytest.raises(ClientError, match="no ticker service answers"),
    ):
        client.request("POST", "/channels/en/items", json={"headline": HEADLINE})
    # 0.25 s, 0.5 s, then what is left of the budget: four tries, not the six of a 503.
    assert 2 <= client.attempts <= 5, client.attempts
    assert CONNECT_BUDGET_S <= 2


def test_tail_with_no_service_says_so_once_then_retries_quietly(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = spawn(cli_env(tmp_path, TICKER_URL=url), "tail")
    try:
        time.sleep(4)  # tries at 0, 1 and 3 s
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=CLI_TIMEOUT)
    assert stderr.count(f"no ticker service answers at {url}") == 1, stderr
    assert "start one with `ticker serve`" in stderr
    assert "connection lost" not in stderr and "Traceback" not in stderr


# -- output ---------------------------------------------------------------------------


LONG = "Storm Ciarán: " + "rail lines closed from Brest to Rotterdam and beyond, " * 3


def test_piped_output_is_one_plain_line_per_item_with_whole_ids_and_uris(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    env = server_env(ticker_server, tmp_path, COLUMNS="80")
    posted = run(env, "post", LONG.strip(), "--region", "europe")
    assert posted.returncode == 0, posted.stderr
    assert len(posted.stdout.splitlines()) == 1 and posted.stdout.startswith("posted "), posted
    uri = uri_from(posted.stdout)
    run(env, "kill", uri)
    listed, logged = run_all(env, ("ls",), ("history",))
    assert listed.returncode == 0 and logged.returncode == 0, listed.stderr + logged.stderr
    assert listed.stdout == ""  # killed: nothing on the ticker
    rows = [line.split("\t") for line in logged.stdout.splitlines()]
    assert [row[1] for row in rows] == ["remove (kill)", "item"], rows
    assert all(row[2] == uri and re.fullmatch(r"\d{13}-\d+", row[0]) for row in rows), rows
    assert history(ticker_server)[0]["id"] == rows[0][0]
    assert rows[-1][-1] == LONG.strip()  # the headline whole, on the same line


def test_terminal_tables_never_cut_a_uri(ticker_server: TickerProcess, tmp_path: Path) -> None:
    item = ticker_server.post("en", headline=LONG.strip())
    env = server_env(ticker_server, tmp_path, COLUMNS="60", FORCE_COLOR="1")
    listed, logged = run_all(env, ("ls",), ("history",))
    assert "on the ticker" in listed.stdout and "history" in logged.stdout  # tables
    assert item["uri"] in listed.stdout and item["uri"] in logged.stdout
    assert item["id"] in logged.stdout
    assert "in 5h 59m" in listed.stdout or "in 6h" in listed.stdout  # relative, no zone to guess


def test_each_validation_error_is_printed_once_in_our_words(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    done = run(server_env(ticker_server, tmp_path), "post", " ", "--urgency", "10")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: headline: must not be empty or only whitespace",
        "error: urgency: must be 1 (most urgent) to 9",
    ]


def test_help_reads_like_a_command_line_tool(tmp_path: Path) -> None:
    post, ls, serve = run_all(
        cli_env(tmp_path), ("post", "--help"), ("ls", "--help"), ("serve", "--help")
    )
    assert "ticker post [OPTIONS] HEADLINE" in post.stdout
    for done in (post, ls, serve):
        assert done.returncode == 0, done.stderr
        assert "<bool>" not in done.stdout and "list[" not in done.stdout, done.stdout
    region = next(line for line in post.stdout.splitlines() if "--region" in line)
    assert "REGION" in region and "repeat" in region
    assert "item as JSON" not in ls.stdout
    assert "127.0.0.1" in serve.stdout and "8000" in serve.stdout


def test_starting_the_command_does_not_load_the_server_stack() -> None:
    """Every `ticker` run pays what ``ticker.cli.main`` imports; Redis, HTTP and the settings
    models load inside the commands that use them."""
    heavy = ("redis", "httpx", "uvicorn", "starlette", "pydantic_settings", "ticker.settings")
    code = f"import sys, ticker.cli.main; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=True,
    )
    assert done.stdout.strip() == "[]"


HEAVY_FOR_HELP = ("redis", "httpx", "pydantic", "pydantic_settings", "uvicorn", "starlette")


def test_help_starts_about_as_fast_as_python_itself() -> None:
    """`ticker --help` loads no Redis, HTTP or settings code, and takes little longer than a
    bare interpreter (the issue's goal is 0.3 s over `python -c pass`; on a loaded machine
    both slow down, so the bound is a ratio of medians measured side by side)."""
    ticker = [sys.executable, "-m", "ticker", "--help"]
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", *ticker[1:]],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=True,
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in traced.stderr.splitlines()}
    assert [m for m in HEAVY_FOR_HELP if m in loaded] == []

    def median_run(args: list[str]) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(args, capture_output=True, timeout=CLI_TIMEOUT, check=True)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    bare = median_run([sys.executable, "-c", "pass"])
    helped = median_run(ticker)
    # Measured on an idle 2-core machine: ~0.02 s and ~0.25 s. 40x leaves room for load.
    assert helped < 40 * bare, f"--help {helped:.2f} s, python -c pass {bare:.3f} s"


def test_post_with_a_relative_embargo_shows_the_release_time(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    done = run(server_env(ticker_server, tmp_path), "post", HEADLINE, "--embargo", "30m")
    assert done.returncode == 0, done.stderr
    assert history(ticker_server) == []  # nobody has seen it: not in the public history
    stored = httpx.get(
        f"{ticker_server.url}/channels/en/queue",
        headers={"Authorization": f"Bearer {ticker_server.token}"},
        timeout=10,
    ).json()["items"]
    (queued,) = stored
    assert f"embargoed until {queued['embargoed_until']} (in " in done.stdout
    bad = run(server_env(ticker_server, tmp_path), "post", HEADLINE, "--embargo", "soon")
    assert bad.returncode == 1 and bad.stderr.startswith("error: embargo")


def test_correct_from_an_older_version_is_refused_and_says_what_changed(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    env = server_env(ticker_server, tmp_path)
    uri = ticker_server.post("en", headline="Death toll rises to three")["uri"]
    ticker_server.patch("en", uri, headline="Death toll rises to four")
    stale = run(env, "correct", uri, "Death toll: three, hospital says", "--base-version", "1")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert stale.stdout == ""
    assert stale.stderr.startswith(f"error: not corrected: {uri} changed since v1; it is now v2")
    assert "v1 (yours):   Death toll rises to three" in stale.stderr
    assert "v2 (now):     Death toll rises to four" in stale.stderr
    assert [(i["version"], i["headline"]) for i in current(ticker_server)] == [
        (2, "Death toll rises to four")
    ]
    # Without --base-version it corrects the version it has just read.
    done = run(env, "correct", uri, "Death toll rises to five")
    assert done.returncode == 0 and done.stdout.startswith(f"corrected {uri} (v3)"), done.stderr


def test_hold_of_a_held_item_writes_nothing_and_says_unchanged(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    env = server_env(ticker_server, tmp_path)
    uri = ticker_server.post("en", headline=HEADLINE)["uri"]
    first, _ = run_all(env, ("hold", uri), ("correct", uri, HEADLINE))
    assert first.stdout.startswith(f"held {uri} (v2)"), first.stdout + first.stderr
    again, same_text = run_all(env, ("hold", uri), ("correct", uri, HEADLINE))
    assert again.returncode == 0 and again.stdout.startswith(f"unchanged {uri} (v2)")
    assert same_text.returncode == 0 and same_text.stdout.startswith(f"unchanged {uri} (v2)")
    desk = httpx.get(
        f"{ticker_server.url}/channels/en/items",
        params={"history": "true"},
        headers={"Authorization": f"Bearer {ticker_server.token}"},
        timeout=10,
    ).json()["items"]
    assert [(e["event"], e["version"]) for e in desk] == [("remove", 2), ("item", 1)]


def test_release_puts_an_embargoed_item_on_air_and_queue_says_embargoed(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    env = server_env(ticker_server, tmp_path)
    posted = run(env, "post", HEADLINE, "--embargo", "10m")
    uri = uri_from(posted.stdout)
    queued = run(env, "queue")
    assert queued.stdout.split("\t")[:2] == [uri, "embargoed"], queued.stdout
    released = run(env, "release", uri)
    assert released.returncode == 0 and released.stdout.startswith(f"released {uri} (v2)")
    assert [i["uri"] for i in current(ticker_server)] == [uri]
    again = run(env, "release", uri)
    assert again.stdout.startswith(f"unchanged {uri} (v2)"), again.stdout + again.stderr


def test_embargo_takes_a_clock_time_and_errors_name_every_form(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    env = server_env(ticker_server, tmp_path)
    at = (datetime.now(UTC) + timedelta(hours=2)).strftime("%H:%M")
    good, bad, on_air = run_all(
        env,
        ("post", HEADLINE, "--embargo", at, "--json"),
        ("post", HEADLINE, "--embargo", "25:00"),
        ("post", "Already out"),
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["embargoed_until"][11:16] == at  # the channel is in UTC
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: embargo: '25:00' is not a clock time")
    assert "a duration (30m, 2h), a clock time (18:30) or an RFC 3339 time" in bad.stderr
    moved = run(env, "correct", uri_from(on_air.stdout), "--embargo", "30m")
    assert moved.returncode == 1 and "this one is on air" in moved.stderr


def test_a_contributor_posts_for_sign_off_and_an_editor_approves_or_rejects(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    secret = make_token(settings, "stringer", ["en"], role="contributor")
    stringer = server_env(ticker_server, tmp_path, TICKER_TOKEN=secret)
    editor = server_env(ticker_server, tmp_path)
    base = f"{ticker_server.url}/channels/en/items"
    a, b, c = (
        httpx.post(
            base, json={"headline": h}, headers={"Authorization": f"Bearer {secret}"}
        ).json()["uri"]
        for h in ("Dyke breach near Hoorn", "Minister to resign", "Bridge shut")
    )
    r = httpx.post(
        f"{base}/{c}/reject",
        json={"note": "One source only"},
        headers={"Authorization": f"Bearer {ticker_server.token}"},
    )
    assert r.status_code == 200, r.text
    # One round of processes (each pays ~1 s of imports): they touch different items.
    posted, approved, rejected, queued = run_each(
        [
            (stringer, ("post", "Storm closes the A7")),
            (editor, ("approve", a)),
            (editor, ("reject", b, "--note", "Not confirmed")),
            (stringer, ("queue",)),
        ]
    )
    assert "status pending (needs sign-off)" in posted.stdout, posted.stdout + posted.stderr
    assert approved.stdout.startswith(f"approved {a} (v2)"), approved.stdout + approved.stderr
    assert rejected.stdout.startswith(f"rejected {b} (v2)"), rejected.stdout + rejected.stderr
    assert [i["uri"] for i in current(ticker_server)] == [a]
    rows = {row.split("\t")[0]: row.split("\t") for row in queued.stdout.splitlines()}
    assert rows[c][1] == "rejected" and rows[c][-1] == "rejected by server-editor: One source only"
    assert rows[b][1] in ("pending", "rejected")  # the queue may read before or after
