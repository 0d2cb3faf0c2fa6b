"""The compose file's Valkey users, against a real server started with the compose file's
own arguments: ticker serves as its `ticker` user, and the `reader` user can read the
streams and run a consumer group but write nothing else (docs/deploy.md#valkey-users)."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from pydantic import SecretStr

from tests.helpers import TickerProcess, free_port, make_token, read_until, wait_until
from ticker.embedded import find_redis_server
from ticker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = {
    name: secrets.token_hex(12)
    for name in ("VALKEY_ADMIN_PASSWORD", "VALKEY_TICKER_PASSWORD", "VALKEY_READER_PASSWORD")
}


def interpolate(value: str) -> str:
    """Compose's ``${NAME}`` and ``${NAME:?message}``, from PASSWORDS."""
    return re.sub(r"\$\{(\w+)(?::\?[^}]*)?\}", lambda m: PASSWORDS[m.group(1)], value)


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


@pytest.fixture(scope="module")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no valkey-server or redis-server to start")
    command = [interpolate(arg) for arg in compose()["services"]["redis"]["command"]]
    assert command[0] == "valkey-server"
    port = free_port()
    workdir = tmp_path_factory.mktemp("valkey")
    local = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", ""]
    proc = subprocess.Popen(
        [binary, *command[1:], *local], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        admin = redis.Redis(port=port, password=PASSWORDS["VALKEY_ADMIN_PASSWORD"])

        def up() -> bool:
            try:
                return bool(admin.ping())
            except redis.ConnectionError:
                assert proc.poll() is None, "valkey-server refused the compose file's arguments"
                return False

        wait_until(up, 10)
        admin.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def user(port: int, name: str) -> Any:
    password = PASSWORDS[f"VALKEY_{name.upper()}_PASSWORD"]
    return redis.Redis(port=port, username=name, password=password, decode_responses=True)


def test_the_default_user_needs_the_admin_password(valkey: int) -> None:
    with socket.create_connection(("127.0.0.1", valkey), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert read_until(sock, b"\r\n").startswith(b"-NOAUTH")


def test_ticker_serves_as_its_user(valkey: int, tmp_path: Path) -> None:
    url = compose()["services"]["ticker"]["environment"]["TICKER_REDIS_URL"]
    url = interpolate(url).replace("@redis:6379", f"@127.0.0.1:{valkey}")
    settings = Settings(redis_url=SecretStr(url), state_dir=tmp_path / "state")
    assert settings.key_prefix == "ticker"  # the prefix the ACL grants
    server = TickerProcess(
        {"TICKER_REDIS_URL": url, "TICKER_STATE_DIR": str(tmp_path / "state")},
        log=tmp_path / "serve.log",
    )
    server.token = make_token(settings, "chief", ["*"])
    server.start()
    try:
        item = server.post("en", headline="Under the ticker user", urgency=2)
        server.patch("en", item["uri"], headline="Corrected under the ticker user")
        with httpx.stream("GET", f"{server.url}/channels/en/events", timeout=10) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if "Corrected under the ticker user" in line:
                    break
        server.kill("en", item["uri"])
    finally:
        assert server.stop() == 0, (tmp_path / "serve.log").read_text()[-3000:]
    client = user(valkey, "ticker")
    # The commands outside the key space that ticker sends (ack.py, aof.py, store.py).
    assert "redis_version" in client.info()
    assert client.execute_command("WAIT", 0, 0) == 0
    assert client.execute_command("WAITAOF", 1, 0, 0)[0] == 1
    assert client.bgrewriteaof()
    wait_until(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0, 10)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.set("not-ticker:x", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()


def test_reader_reads_and_runs_a_group_but_writes_nothing_else(valkey: int) -> None:
    ticker, reader = user(valkey, "ticker"), user(valkey, "reader")
    events, items = "ticker:{acl}:events", "ticker:{acl}:items"
    entry = ticker.xadd(events, {"type": "item"})
    ticker.hset(items, "u1", "{}")
    ticker.hset("ticker:{auth}:hashes", "h", "{}")
    try:
        assert reader.xread({events: 0})[0][1][0][0] == entry
        assert reader.hgetall(items) == {"u1": "{}"}
        assert reader.xgroup_create("ticker:{acl2}:events", "g", id="0", mkstream=True)
        assert reader.xgroup_create(events, "g", id="0")
        [[_, [[got, _]]]] = reader.xreadgroup("g", "c1", {events: ">"})
        assert reader.xack(events, "g", got) == 1
        reader.xautoclaim(events, "g", "c2", min_idle_time=0)
        refused = [
            lambda: reader.xadd(events, {"type": "item"}),
            lambda: reader.xdel(events, entry),
            lambda: reader.xtrim(events, maxlen=0),
            lambda: reader.delete(events),
            lambda: reader.xgroup_destroy(events, "g"),
            lambda: reader.hset(items, "u2", "{}"),
            lambda: reader.hgetall("ticker:{auth}:hashes"),
            lambda: reader.keys("*"),
        ]
        for call in refused:
            with pytest.raises(redis.exceptions.NoPermissionError):
                call()
    finally:
        ticker.delete(events, items, "ticker:{acl2}:events", "ticker:{auth}:hashes")
