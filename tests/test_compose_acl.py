"""The compose file's Valkey users, against a real server started with the compose file's
own arguments: ticker serves as its `ticker` user, and the `reader` user can read the
streams and run a consumer group but write nothing else, nor list keys
(docs/deploy.md#valkey-users). As `reader`, both readers in clients/ and the first-read
recipe of docs/streams.md run as documented (docs/streams.md#connecting-as-the-reader-user)."""

from __future__ import annotations

import json
import re
import secrets
import shutil
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

from tests.helpers import TickerProcess, free_port, load_python_reader, make_token, wait_until
from tests.sockets import read_until
from ticker.server.embedded import find_redis_server
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
    # The commands outside the key space that ticker sends (ack.py, aof.py, store/).
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
            lambda: reader.scan(),
            lambda: reader.randomkey(),
            lambda: reader.xgroup_setid(events, "g", "0"),
            lambda: reader.xgroup_delconsumer(events, "g", "c1"),
        ]
        for call in refused:
            with pytest.raises(redis.exceptions.NoPermissionError):
                call()
        # A write inside a transaction aborts all of it: nothing is written.
        with pytest.raises(redis.exceptions.ResponseError):
            reader.pipeline(transaction=True).xlen(events).xadd(events, {"x": "1"}).execute()
        assert ticker.xlen(events) == 1
    finally:
        ticker.delete(events, items, "ticker:{acl2}:events", "ticker:{auth}:hashes")


def entry(n: int) -> dict[str, str]:
    """A stream entry as ticker writes one (docs/streams.md)."""
    uri = f"urn:acl:{n}"
    item = {"uri": uri, "headline": f"Read as reader {n}", "version": 1, "status": "usable"}
    return {"v": "1", "type": "item", "uri": uri, "reason": "", "item": json.dumps(item)}


def reader_url(port: int) -> str:
    return f"redis://reader:{PASSWORDS['VALKEY_READER_PASSWORD']}@127.0.0.1:{port}/0"


def test_the_python_reader_and_the_first_read_recipe_run_as_reader(valkey: int) -> None:
    ticker, client = user(valkey, "ticker"), user(valkey, "reader")
    key, items, live = "ticker:{acl3}:events", "ticker:{acl3}:items", "ticker:{acl3}:live"
    try:
        ids = [ticker.xadd(key, entry(n)) for n in (1, 2)]
        ticker.hset(items, "urn:acl:1", "{}")
        ticker.zadd(live, {"urn:acl:1": 1})
        # The first read of docs/streams.md, both ways: one MULTI/EXEC each.
        first = client.pipeline(transaction=True)
        newest, state = first.xrevrange(key, count=1).hgetall(items).execute()
        assert newest[0][0] == ids[-1] and state == {"urn:acl:1": "{}"}
        grouped = client.pipeline(transaction=True)
        grouped.xgroup_create(key, "boot", id="$", mkstream=True).hgetall(items)
        assert grouped.execute() == [True, {"urn:acl:1": "{}"}]
        assert client.zrange(live, 0, -1) == ["urn:acl:1"]
        # clients/python/reader.py, as its README runs it: a group from the start.
        module = load_python_reader("acl_stream_reader")
        connection = module.connect(reader_url(valkey), block_ms=100)
        try:
            seen: list[Any] = []
            group = module.GroupReader(connection, key, "py", "c1", start="0", block_ms=100)
            group.run(seen.append, limit=2)
        finally:
            connection.close()
        assert [(e.id, e.uri) for e in seen] == [(ids[0], "urn:acl:1"), (ids[1], "urn:acl:2")]
        assert client.xpending(key, "py")["pending"] == 0  # each one acknowledged
    finally:
        ticker.delete(key, items, live)


def test_the_node_reader_runs_its_group_as_reader(valkey: int) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node")
    ticker = user(valkey, "ticker")
    key = "ticker:{acl4}:events"
    try:
        ids = [ticker.xadd(key, entry(n)) for n in (1, 2)]
        args = ["--url", reader_url(valkey), "--key", key, "--group", "node", "--consumer", "c1"]
        done = subprocess.run(
            [node, "reader.mjs", *args, "--start", "0", "--count", "2", "--timeout", "10"],
            cwd=ROOT / "clients" / "node",
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ids
        assert ticker.xpending(key, "node")["pending"] == 0
    finally:
        ticker.delete(key)
