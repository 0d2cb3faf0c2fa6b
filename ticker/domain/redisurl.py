"""What a ``TICKER_REDIS_URL`` names: one server, a Redis Cluster's seed nodes, or Redis
Sentinel's sentinels and service (store/redisconn.py lists the forms and connects). A
parse only, so settings.py checks the URL at start-up; a ``ValueError`` never quotes
the credentials."""

from __future__ import annotations

from dataclasses import dataclass

SINGLE, CLUSTER, SENTINEL = "single", "cluster", "sentinel"
_KINDS = {
    "redis": (SINGLE, "redis"),
    "rediss": (SINGLE, "rediss"),
    "unix": (SINGLE, "unix"),
    "redis+cluster": (CLUSTER, "redis"),
    "rediss+cluster": (CLUSTER, "rediss"),
    "redis+sentinel": (SENTINEL, "redis"),
    "rediss+sentinel": (SENTINEL, "rediss"),
}
_DEFAULT_PORT = {CLUSTER: 6379, SENTINEL: 26379}
_SCHEMES = ", ".join(f"{s}://" for s in _KINDS)


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a ``TICKER_REDIS_URL`` names."""

    kind: str  # single | cluster | sentinel
    url: str  # a URL redis-py parses: the server, or the first node with the options
    nodes: tuple[tuple[str, int], ...] = ()  # cluster seed nodes, or the sentinels
    service: str = ""  # Sentinel: the primary's name


def parse_redis_url(url: str) -> RedisTarget:
    """Check a Redis URL; ``ValueError`` (never quoting the credentials) when it is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _KINDS:
        raise ValueError(f"TICKER_REDIS_URL must start with one of {_SCHEMES}")
    kind, base = _KINDS[scheme.lower()]
    if kind == SINGLE:
        return _checked(RedisTarget(SINGLE, url))
    netloc, path, query = _split(rest)
    userinfo, _, hosts = netloc.rpartition("@")
    nodes = tuple(_node(part, _DEFAULT_PORT[kind], scheme) for part in hosts.split(","))
    parts = [p for p in path.split("/") if p]
    service, db = "", "0"
    if kind == CLUSTER:
        if parts not in ([], ["0"]):
            raise ValueError(f"{scheme}:// URL: a Redis Cluster has only database 0")
    else:
        if not parts or len(parts) > 2:
            raise ValueError(
                f"{scheme}:// URL must name the primary: {scheme}://host:26379/SERVICE[/DB]"
            )
        service = parts[0]
        db = parts[1] if len(parts) == 2 else "0"
        if not db.isdigit():
            raise ValueError(f"{scheme}:// URL: the database must be a number")
    host, port = nodes[0]
    host = f"[{host}]" if ":" in host else host
    creds = f"{userinfo}@" if userinfo else ""
    return _checked(
        RedisTarget(
            kind,
            f"{base}://{creds}{host}:{port}/{db}{'?' + query if query else ''}",
            nodes,
            service,
        )
    )


def _checked(target: RedisTarget) -> RedisTarget:
    """redis-py's own parse of the URL: the query's options (``?socket_timeout=x``)."""
    from redis.asyncio.connection import parse_url  # redis-py: only when a URL is set

    try:
        parse_url(target.url)
    except ValueError as exc:  # its messages name the option, never the URL
        raise ValueError(f"TICKER_REDIS_URL: {exc}") from None
    return target


def _split(rest: str) -> tuple[str, str, str]:
    """``netloc/path?query`` -> its three parts (the credentials may not hold / or ?)."""
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    path, _, query = tail.partition("?")
    return netloc, path, query


def _node(text: str, default_port: int, scheme: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [::1]:7000
        host, _, port_text = text[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError(f"{scheme}:// URL: every node needs a host (host:port,host:port)")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        # Not quoted: a password with an unescaped / would end up here.
        raise ValueError(f"{scheme}:// URL: a node's port must be a number from 1 to 65535")
    return host, int(port_text)


def redis_location(url: str) -> str:
    """A Redis URL fit for an error message: scheme, hosts and path, never the credentials
    or the query (which may hold ``password=``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "TICKER_REDIS_URL"
    netloc, path, _ = _split(rest)
    return f"{scheme}://{netloc.rpartition('@')[2]}{path}"
