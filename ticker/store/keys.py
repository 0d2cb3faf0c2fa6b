"""Key names: the only place that spells them.

Key layout (docs/streams.md is the contract; every key of a channel shares the ``{channel}``
hash tag, so a channel's multi-key scripts stay in one Redis Cluster slot):

    {prefix}:{ch}:events    stream, one entry per event (fields v, type, uri, reason, item)
    {prefix}:{ch}:items     hash uri -> latest version of every item, as JSON
    {prefix}:{ch}:live      zset uri -> created ms, the items on the ticker now
    {prefix}:{ch}:expiry    zset uri -> expires ms, the expiry schedule
    {prefix}:{ch}:embargo   zset uri -> release ms, items waiting for their embargo
    {prefix}:{ch}:held      zset uri -> ms of the hold, items withheld (the desk's queue)
    {prefix}:{ch}:pinned    set of uris: pinned items (no live_max_items push-out)
    {prefix}:{ch}:story:{slug}  set of uris: the channel's editions of a story
    {prefix}:{ch}:reach     hash uri -> readers the item was delivered to (every process)
    {prefix}:{ch}:versions:{uri}  list, every version of an item (the audit trail)
    {prefix}:{ch}:idem:{k}  string, the first reply to an Idempotency-Key (with a TTL)
    {prefix}:{ch}:log       hash uri -> the IDs of the item's stream entries (for purge)
    {prefix}:{ch}:last      zset uri -> ms of the item's newest entry (for pruning)
    {prefix}:{ch}:idem-of   hash uri -> the Idempotency-Key entry that holds its reply
    {prefix}:{ch}:purged    hash uri -> the audit record of a purge (no text)
    {prefix}:{ch}:audit     stream, one entry per kill, purge, approval and rejection
    {prefix}:{ch}:dupes     hash digest of a normal headline -> uri of its newest post
    {prefix}:{ch}:dupes-at  zset digest -> ms of that post (the duplicate window, newsroom/dupes.py)
    {prefix}:{ch}:indexed   string, set once the per-item index covers older data
    {prefix}:{ch}:held-indexed  string, set once ``held`` covers items held before it existed
    {prefix}:{ch}:ack       string, rewritten before each WAIT (TICKER_ACK_*; see client.py)
    {prefix}:{auth}:tokens  hash name -> token record (JSON, with the SHA-256 of the secret)
    {prefix}:{auth}:hashes  hash sha256 -> name
    {prefix}:{auth}:used    hash name -> ms the token was last used (at most once a minute)
    {prefix}:{auth}:rate:{sha256}  string, the token's write-rate state (GCRA, with a TTL)
    {prefix}:{auth}:ack     string, as {ch}:ack, for the token writes
    {prefix}:{fleet}:procs  zset process id -> ms of its last report (ticker/ops/fleet.py)
    {prefix}:{fleet}:proc:{id}  string, the process's last report (JSON, with a TTL)
    {prefix}:{aof}:wanted   string, purges not yet covered by an AOF rewrite (newsroom/aof.py)
    {prefix}:{aof}:lock     string, ms of the last rewrite asked, for one interval (PX)
    {prefix}:{aof}:asked    string, ms of the last rewrite ticker asked for
"""

from __future__ import annotations

from dataclasses import dataclass

from ticker.store.scripts import Script


@dataclass(frozen=True, slots=True)
class Keys:
    """A channel's keys (``{prefix}:{channel}:...``)."""

    events: str
    items: str
    live: str
    expiry: str
    embargo: str
    held: str
    pinned: str
    story_prefix: str
    reach: str
    idem_prefix: str
    versions_prefix: str
    log: str
    last: str
    idem_of: str
    purged: str
    audit: str
    dupes: str
    dupes_at: str
    indexed: str
    held_indexed: str
    ack: str

    def of(self, script: Script, **given: str) -> dict[str, str]:
        """The KEYS of a channel script by name: a key named like a field is that field;
        the per-item and per-call ones (``versions``, ``idem``, ``marker``...) are given."""
        return {name: given[name] if name in given else getattr(self, name) for name in script.keys}


def channel_keys(prefix: str, channel: str) -> Keys:
    base = f"{prefix}:{{{channel}}}"
    return Keys(
        events=f"{base}:events",
        items=f"{base}:items",
        live=f"{base}:live",
        expiry=f"{base}:expiry",
        embargo=f"{base}:embargo",
        held=f"{base}:held",
        pinned=f"{base}:pinned",
        story_prefix=f"{base}:story:",
        reach=f"{base}:reach",
        idem_prefix=f"{base}:idem:",
        versions_prefix=f"{base}:versions:",
        log=f"{base}:log",
        last=f"{base}:last",
        idem_of=f"{base}:idem-of",
        purged=f"{base}:purged",
        audit=f"{base}:audit",
        dupes=f"{base}:dupes",
        dupes_at=f"{base}:dupes-at",
        indexed=f"{base}:indexed",
        held_indexed=f"{base}:held-indexed",
        ack=f"{base}:ack",
    )


@dataclass(frozen=True, slots=True)
class AuthKeys:
    """The token keys (``{auth}``: one slot, so a token script's keys stay together)."""

    tokens: str
    hashes: str
    used: str
    ack: str
    rate_prefix: str

    def rate(self, sha256: str) -> str:
        return self.rate_prefix + sha256


def auth_keys(prefix: str) -> AuthKeys:
    base = f"{prefix}:{{auth}}"
    return AuthKeys(
        tokens=f"{base}:tokens",
        hashes=f"{base}:hashes",
        used=f"{base}:used",
        ack=f"{base}:ack",
        rate_prefix=f"{base}:rate:",
    )


def fleet_keys(prefix: str) -> tuple[str, str]:
    """(the index of processes, the prefix of their reports)."""
    base = f"{prefix}:{{fleet}}"
    return f"{base}:procs", f"{base}:proc:"


def aof_keys(prefix: str) -> tuple[str, str, str]:
    """(purges waiting, the interval's lock, the last rewrite asked)."""
    base = f"{prefix}:{{aof}}"
    return f"{base}:wanted", f"{base}:lock", f"{base}:asked"
