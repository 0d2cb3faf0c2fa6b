"""The container files: docker-compose.yml is valid against the Compose Specification's
JSON schema (the copy check-jsonschema ships), and says what users rely on; the Dockerfile
runs `ticker serve` as a non-root user; the health check command works against a real ticker.
No Docker engine is needed."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers import TickerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent


def compose_schema() -> dict[str, Any]:
    path = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def schema_errors(document: Any) -> list[str]:
    schema = compose_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage and the build stage alike, in order."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            rows.append((word.upper(), rest.strip()))
    return rows


def exec_form(args: str) -> list[str]:
    """The JSON array of a CMD/HEALTHCHECK CMD in exec form."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def test_compose_file_is_valid_against_the_compose_spec(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_catches_mistakes(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["ticker"]["depends_on"]["redis"]["condition"] = "service_happy"
    broken["services"]["redis"]["healtcheck"] = broken["services"]["redis"].pop("healthcheck")
    errors = schema_errors(broken)
    assert any("service_happy" in e for e in errors), errors
    assert any("'healtcheck'" in e for e in errors), errors


def test_redis_keeps_its_data_and_reports_health(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    # Valkey (BSD), pinned: Redis 7.4+ is under a licence docs/decisions/0002 rules out.
    assert re.fullmatch(r"valkey/valkey:(8|9)\.\d+\.\d+-alpine", redis["image"])
    command = redis["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    assert command[command.index("--appendonly") + 1] == "yes"
    # A password, required from the shell (no default in the file), and the check uses it.
    assert command[command.index("--requirepass") + 1].startswith("${VALKEY_ADMIN_PASSWORD:?")
    assert redis["environment"]["REDISCLI_AUTH"] == "${VALKEY_ADMIN_PASSWORD}"
    assert "valkey-cli ping" in " ".join(redis["healthcheck"]["test"])
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data"  # the image's working directory, where the AOF goes
    assert volume in compose["volumes"]  # a named volume: the data outlives the container


def test_ticker_waits_for_redis_and_scales(compose: dict[str, Any]) -> None:
    ticker = compose["services"]["ticker"]
    assert ticker["build"] in (".", {"context": "."})
    # As the ticker ACL user (tests/test_compose_acl.py checks what it may do).
    url = "redis://ticker:${VALKEY_TICKER_PASSWORD}@redis:6379/0"
    assert ticker["environment"]["TICKER_REDIS_URL"] == url
    assert ticker["depends_on"]["redis"]["condition"] == "service_healthy"
    # No fixed host port: `docker compose up --scale ticker=2` must not collide.
    for port in ticker.get("ports", []):
        assert ":" not in str(port), f"fixed host port {port!r} breaks --scale"


def test_a_replica_is_one_profile_away_and_ticker_can_wait_for_it(
    compose: dict[str, Any],
) -> None:
    replica = compose["services"]["redis-replica"]
    assert replica["profiles"] == ["replica"]  # `docker compose up` alone is unchanged
    assert replica["image"] == compose["services"]["redis"]["image"]
    command = replica["command"]
    assert command[command.index("--replicaof") + 1 :][:2] == ["redis", "6379"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert replica["volumes"][0].partition(":")[0] in compose["volumes"]
    # The same users and passwords as the primary (a promoted replica lets the same clients
    # in), and it authenticates to the primary.
    assert command[command.index("--masterauth") + 1] == "${VALKEY_ADMIN_PASSWORD}"

    def users(args: list[str]) -> list[str]:
        plain = [re.sub(r"(\$\{\w+)(:\?[^}]*)?\}", r"\1}", a) for a in args]
        return plain[plain.index("--requirepass") :]

    assert users(command) == users(compose["services"]["redis"]["command"])
    assert replica["environment"] == compose["services"]["redis"]["environment"]
    # The shell's TICKER_ACK_REPLICAS, 0 (the primary alone) when it is unset.
    ticker = compose["services"]["ticker"]
    assert ticker["environment"]["TICKER_ACK_REPLICAS"] == "${TICKER_ACK_REPLICAS:-0}"


def test_prometheus_scrapes_every_ticker_with_an_ops_token_from_a_file(
    compose: dict[str, Any],
) -> None:
    prometheus = compose["services"]["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v3\.\d+\.\d+", prometheus["image"])  # pinned
    assert prometheus["profiles"] == ["monitoring"]  # `docker compose up` alone is unchanged
    # Its config is the repository's file, where the server reads it.
    config_path = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    mounted = {
        target: source for source, target, *_ in (v.split(":") for v in prometheus["volumes"])
    }
    source = mounted[config_path.partition("=")[2]]
    config = yaml.safe_load((ROOT / source).read_text())
    [job] = config["scrape_configs"]
    # The token from a Compose secret, mounted where the config looks for it; no secret in
    # the config itself.
    [secret] = prometheus["secrets"]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert job["authorization"].get("type", "Bearer") == "Bearer"
    assert "credentials" not in job["authorization"]
    token_file = compose["secrets"][secret]["file"]
    for ignored in (".gitignore", ".dockerignore"):
        assert token_file.removeprefix("./") in (ROOT / ignored).read_text().split(), ignored
    # Every replica of the ticker service, on the port it listens on, at /metrics.
    assert job.get("metrics_path", "/metrics") == "/metrics"
    [sd] = job["dns_sd_configs"]
    assert sd["names"] == ["ticker"] and sd.get("type", "A") == "A"
    assert "ticker" in compose["services"]
    env = " ".join(args for word, args in dockerfile_instructions() if word == "ENV")
    port = int(re.search(r"TICKER_PORT=(\d+)", env)[1])  # type: ignore[index]
    assert sd["port"] == port
    assert [str(p) for p in compose["services"]["ticker"]["ports"]] == [str(port)]
    assert prometheus["depends_on"]["ticker"]["condition"] == "service_healthy"
    # Its UI has no login: loopback only. Its data outlives the container.
    assert all(str(p).startswith("127.0.0.1:") for p in prometheus["ports"])
    assert mounted["/prometheus"] in compose["volumes"]


def test_dockerfile_runs_ticker_serve_as_a_non_root_user() -> None:
    rows = dockerfile_instructions()
    stages = [args for word, args in rows if word == "FROM"]
    assert stages and all(s.startswith("python:3.11-slim") for s in stages), stages
    final = rows[max(i for i, (word, _) in enumerate(rows) if word == "FROM") :]
    words = dict(final)
    assert exec_form(words["CMD"]) == ["ticker", "serve"]  # the settings come from ENV
    assert "TICKER_HOST=0.0.0.0" in words["ENV"] and "TICKER_PORT=8000" in words["ENV"]
    assert words["USER"] not in ("root", "0")
    assert words["EXPOSE"] == "8000"
    assert "/readyz" in words["HEALTHCHECK"]
    # Installed from the lock, without the dev tools.
    assert any("uv sync --locked --no-dev" in args for word, args in rows if word == "RUN")


def test_docker_context_holds_what_the_build_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", ".git"} <= ignored  # no secrets or local state in the image
    for word, args in dockerfile_instructions():
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert source not in ignored, f"{source} is copied but .dockerignore drops it"


def test_compose_repeats_none_of_the_images_settings(compose: dict[str, Any]) -> None:
    ticker = compose["services"]["ticker"]
    env = " ".join(args for word, args in dockerfile_instructions() if word == "ENV")
    for name in ticker["environment"]:
        assert f"{name}=" not in env, f"{name} is set in the Dockerfile and the compose file"
    assert "healthcheck" not in ticker  # the image's HEALTHCHECK applies
    assert "command" not in ticker  # and its CMD


def test_every_service_rotates_its_logs(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) > 1, name


def _healthcheck_command() -> list[str]:
    words = dict(dockerfile_instructions())
    _, _, image_cmd = words["HEALTHCHECK"].partition(" CMD ")
    return exec_form(image_cmd)


def test_health_check_passes_on_a_ready_ticker_and_fails_on_none(
    ticker_server: TickerProcess,
) -> None:
    command = _healthcheck_command()
    assert command[0] == "python"
    run = [sys.executable, *command[1:]]
    ok = subprocess.run(
        run, env={"TICKER_PORT": str(ticker_server.port)}, capture_output=True, timeout=10
    )
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run(
        run, env={"TICKER_PORT": str(free_port())}, capture_output=True, timeout=10
    )
    assert down.returncode != 0
