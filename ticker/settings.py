"""Configuration: one frozen object, read once from ``TICKER_*`` variables (and ``.env``).

Built by the CLI (or the app factory) and passed down; no other module reads the environment.
"""

from __future__ import annotations

import re
from datetime import timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ticker.domain.ack import Ack
from ticker.domain.duration import Duration
from ticker.domain.errors import unknown_channel
from ticker.domain.when import time_zone

CHANNEL_NAME = re.compile(r"[a-z0-9-]{1,32}")  # fullmatch: "$" takes a final "\n"


def default_state_dir() -> Path:
    """Where the embedded Redis keeps its data and socket when none is configured."""
    return Path.home() / ".local" / "state" / "ticker"


class Channel(BaseModel):
    """A declared channel (an edition of the ticker) and its retention rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    language: str = "en"
    # Retention: how long an item stays on the ticker unless the editor says otherwise.
    item_ttl: Duration = timedelta(hours=6)
    # The ticker shows at most this many items; the oldest one is pushed out.
    live_max_items: int = Field(default=20, ge=1, le=500)
    # The replay buffer kept in the stream for resume and for other services.
    history_max_age: Duration = timedelta(hours=48)
    history_max_items: int = Field(default=1000, ge=10, le=1_000_000)
    # The IANA time zone an editor's clock time ("--embargo 18:30") is read in.
    timezone: str = "UTC"
    # A post with the headline of an item posted this recently is refused (dupes.py);
    # null: no such check on this channel.
    duplicate_window: Duration | None = timedelta(minutes=10)
    # How long the widget marks an item "Updated" after a correction marked as one (0: never).
    correction_mark_s: int = Field(default=600, ge=0, le=86_400)
    # A kill's public note reaches readers (the ``remove`` event; the widget shows it in
    # place of the item for one pass). Off: the note is the desk's record only.
    kill_notices: bool = False
    # Whose posts wait for an editor's approval (signoff.py): a contributor's, or all
    # (then the approver may not be one who wrote the item).
    sign_off: Literal["contributors", "all"] = "contributors"

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not CHANNEL_NAME.fullmatch(value):
            raise ValueError("channel names are 1-32 lowercase letters, digits or '-'")
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        time_zone(value)  # a ValueError naming the forms
        return value

    @property
    def zone(self) -> tzinfo:
        return time_zone(self.timezone)

    @model_validator(mode="after")
    def _check_rules(self) -> Channel:
        if self.item_ttl <= timedelta(0):
            raise ValueError("item_ttl must be positive")
        if self.item_ttl > self.history_max_age:
            raise ValueError("item_ttl must not exceed history_max_age")
        return self


DEFAULT_CHANNELS = (
    Channel(name="en", language="en"),
    Channel(name="ar", language="ar"),
    Channel(name="es", language="es"),
)


class Settings(BaseSettings):
    """Everything the service can be told. See the settings table in the README."""

    # Errors never echo their input: TICKER_REDIS_URL may carry a password.
    model_config = SettingsConfigDict(
        env_prefix="TICKER_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    # Unset or empty means: start a private (embedded) Redis under state_dir. redis://, rediss://,
    # unix://, or redis+cluster://host:port[,host:port] for a Redis Cluster, or
    # redis+sentinel://host:26379/service for the primary that Sentinel names.
    redis_url: SecretStr | None = None
    key_prefix: str = Field(default="ticker", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    state_dir: Path = Field(default_factory=default_state_dir)
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Log lines on stderr: one JSON object per line, or `LEVEL logger: message` for people;
    # auto picks console on a terminal and JSON otherwise (containers, systemd, pipes).
    log_format: Literal["auto", "json", "console"] = "auto"

    # Where the workers of `ticker serve --workers N` share their metrics (prometheus-client's
    # multiprocess mode reads the same variable). Unset: serve makes a directory per run.
    metrics_dir: Path | None = Field(default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR")
    # Each process reports its readers to Redis this often (for /stats across the fleet);
    # a process that stops reporting drops out after three intervals.
    fleet_report_s: float = Field(default=5.0, gt=0, le=300)

    # Acknowledged means durable, when asked: an editor's write (post, correct, hold,
    # release, kill, purge, token changes) is answered only once this many replicas have
    # it (WAIT), and with ack_fsync once the AOF is fsynced on the primary and on them
    # (WAITAOF, Redis/Valkey 7.2+). Not within ack_timeout_ms: 503 not_durable.
    # 0 and false: answered once the primary applied it (a failover can lose it).
    ack_replicas: int = Field(default=0, ge=0, le=100)
    ack_timeout_ms: int = Field(default=1000, ge=1, le=60_000)
    ack_fsync: bool = False

    # Connections to Redis per process (requests wait for a free one, up to 5 s).
    redis_max_connections: int = Field(default=64, ge=2, le=10_000)

    # SSE: reconnection delay told to browsers, and the comment heartbeat for proxies.
    retry_ms: int = Field(default=3000, ge=100, le=600_000)
    # A stream we end gets ``retry_ms`` plus up to this much at random, so a fleet's
    # readers do not all come back in the same instant (frames.last_retry_frame).
    retry_jitter_ms: int = Field(default=2000, ge=0, le=600_000)
    # On SIGTERM/SIGINT, /readyz answers 503 this long while everything else still works
    # (a load balancer stops sending new readers first); then streams end. 0: no drain.
    drain_s: float = Field(default=5.0, ge=0, le=600)
    heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    # A subscriber that has this many undelivered events is cut off (it resumes with
    # Last-Event-ID); this bounds memory per reader whatever the client does.
    subscriber_buffer: int = Field(default=1000, ge=1, le=100_000)
    # The fan-out writes caught-up readers' events straight to their sockets (protocol.py);
    # false: every event goes through ASGI sends (slower; for comparison and as a fallback).
    direct_writes: bool = True
    # A send that blocks longer than this (client stopped reading) ends the stream.
    send_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # A connection that has not sent a complete request head in this time is closed
    # (slowloris; idle sockets holding descriptors). Put a proxy with its own header
    # timeouts in front for the open internet (docs/deploy.md).
    head_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # How long a stream may take to open (its channel's reader reaching Redis, a resume's
    # reads) before it is answered 503 with Retry-After, on every way in.
    open_timeout_s: float = Field(default=8.0, gt=0, le=60)
    # The per-channel Redis reader: how long one XREAD blocks and how many entries it takes.
    read_block_ms: int = Field(default=5000, ge=10, le=60_000)
    read_batch: int = Field(default=500, ge=1, le=10_000)
    # How often each process looks for due expiries and embargoes (expiry reaches screens
    # within about this long after expires_at).
    sweep_interval_s: float = Field(default=0.5, gt=0, le=60)
    # Connection caps. Over a cap a reader gets 200, a long retry: and the end of the
    # body (EventStream gives up for good on any non-200, so no 429/503 here).
    max_readers: int = Field(default=20_000, ge=1)
    max_readers_per_ip: int = Field(default=0, ge=0)  # 0: no per-address cap (proxies, NAT)
    # Peers whose X-Forwarded-For names the client (uvicorn's --forwarded-allow-ips):
    # addresses and CIDR networks, comma-separated, or "*" for every peer. Empty: none,
    # and every connection's client is its peer (ticker/http/forwarded.py).
    forwarded_allow_ips: Annotated[tuple[str, ...], NoDecode] = ()
    over_capacity_retry_ms: int = Field(default=30_000, ge=1000)
    # Writes per token: a sustained rate with a burst allowance (GCRA), then 429.
    write_rate_per_minute: int = Field(default=300, ge=1)
    write_burst: int = Field(default=60, ge=1)
    # Denial-of-service guards on the write API.
    max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=60)
    # After a purge, the text leaves Redis's append-only file within this long: ticker asks
    # for one BGREWRITEAOF per interval at most, across every process (aof.py).
    purge_rewrite_s: float = Field(default=60.0, gt=0, le=86_400)

    # The CLI's side: where the service is and which editor token to send. When unset, the
    # CLI looks for a running embedded service and its dev token under state_dir.
    url: str | None = None
    token: SecretStr | None = None

    # Public read-only endpoints (SSE, widget.js) answer these origins; never the write API.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ("*",)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `TICKER_REDIS_URL=` in a .env or compose file: the embedded Redis, as when unset.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from ticker.domain.redisurl import parse_redis_url

            parse_redis_url(value.get_secret_value())  # a ValueError that names no secret
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from ticker.domain.proxies import Proxies

        Proxies.parse(value)  # a ValueError naming the entry
        return value

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        names = [c.name for c in value]
        if len(set(names)) != len(names):
            raise ValueError("channel names must be unique")
        if not names:
            raise ValueError("declare at least one channel")
        return value

    @property
    def fleet_ttl_s(self) -> float:
        """How long a process's fleet report lasts without a newer one."""
        return self.fleet_report_s * 3

    def channel(self, name: str) -> Channel | None:
        for ch in self.channels:
            if ch.name == name:
                return ch
        return None

    @property
    def ack(self) -> Ack:
        """What a write waits for before it is answered (``TICKER_ACK_*``)."""
        return Ack(self.ack_replicas, self.ack_timeout_ms, self.ack_fsync)

    def known_channel(self, name: str) -> Channel:
        """The channel ``name``, or the 404 every route gives for an unknown one."""
        ch = self.channel(name)
        if ch is None:
            raise unknown_channel(name)
        return ch
