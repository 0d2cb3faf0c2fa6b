"""Editor tokens: created once and shown once, stored as SHA-256 digests, checked per write.

Tokens are 256-bit random secrets, so a plain SHA-256 digest is enough to store them
(there is nothing to brute-force); lookups go by digest, and the final comparison is
constant-time. A token names the channels it may act on (``*`` for all) and its role:
a ``viewer`` only reads; a ``contributor`` also posts, but its posts wait for an editor's
sign-off, and it may change only its own waiting items (signoff.py); an ``editor`` posts
straight to air, corrects, holds, releases, kills, approves and rejects; a ``chief`` also
purges and pins, and reads ``/metrics`` and ``/stats``. Any of these four for a channel
reads the desk's view of it (authors, versions, held items, the queue). An
``ops`` token reads ``/metrics`` and ``/stats`` and nothing else: not the desk, not a
write (its channels do not matter).

Deliberate choices (read before fixing):

* A token past its expiry is told so, with its name and the time ("token 'desk' expired
  at 2026-12-06T18:00:00Z"), not "unknown". Only the holder of a secret the token once
  had learns that name, and the secrets are 256 random bits: nobody else can ask.
* A secret replaced by a rotation is told "rotated", with when it stopped working (the
  grace's end): its holder needs the new secret, not a new token. The record keeps the
  one secret before the current one; an older one is forgotten and is "unknown".
* ``/metrics`` and ``/stats`` name hosts and PIDs: an ``ops`` token (a scraper's, kept in
  a file on the Prometheus host, that can do nothing else) or a ``chief`` reads them. The
  chief already may purge anything, and the local token ``ticker serve`` makes is one,
  so ``ticker stats`` works out of the box. Without a token, or with one that is unknown,
  lapsed or revoked, they answer ``404`` as if absent; a viewer or an editor gets ``403``
  (its holder already knows the service is there).
* An expired token's record stays (listed as expired by ``token ls``) until it is
  revoked: that is what lets it be told "expired". Revoking forgets every secret.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ticker.domain.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    TokenLapsed,
    Unauthorized,
)
from ticker.domain.models import utcnow
from ticker.store import Store

# Statuses of store.tokens.authorize and .by_hash (see store/lua/lib/token_rules.lua).
_UNKNOWN, _GOOD, _FORBIDDEN, _LIMITED, _LAPSED = 0, 1, 2, 3, 4

TOKEN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # fullmatch: "$" takes a final "\n"
ALL_CHANNELS = "*"
# The longest a token may live (``--expires``), and a rotated-out secret's longest grace.
EXPIRES_MAX = timedelta(days=3650)
GRACE_MAX = timedelta(days=30)
# The desk's roles, in order of what they may do: each may do all the one before it may.
DESK_ROLES = ("viewer", "contributor", "editor", "chief")
# Outside that order: reads /metrics and /stats only (see above).
OPS_ROLE: Literal["ops"] = "ops"
ROLES = (*DESK_ROLES, OPS_ROLE)
OPS_READERS = (OPS_ROLE, "chief")  # who reads /metrics and /stats (see above)
Role = Literal["viewer", "contributor", "editor", "chief", "ops"]
# The least role that writes (its posts wait for sign-off); authorize.lua lets in the same.
WRITE_ROLE: Role = "contributor"
# Who may pin and unpin (README, "Pins"): a pin outlasts every other item on the bar.
PIN_ROLE: Role = "chief"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is writing: the token's name (the item's ``author``) and its channels."""

    name: str
    channels: frozenset[str]
    # The token's SHA-256, for its rate state; never the secret.
    digest: str = ""
    role: Role = "editor"

    def may(self, channel: str) -> bool:
        return ALL_CHANNELS in self.channels or channel in self.channels

    def check(self, channel: str) -> None:
        if not self.may(channel):
            raise Forbidden(f"token {self.name!r} may not write to channel {channel!r}")

    def require(self, role: Role) -> None:
        """``403`` unless the token's role covers ``role``: a desk role covers the ones
        before it; ``ops`` is covered by ``ops`` and ``chief``, and covers nothing else."""
        if role == OPS_ROLE:
            allowed = self.role in OPS_READERS
        elif self.role == OPS_ROLE:
            allowed = False
        else:
            allowed = DESK_ROLES.index(self.role) >= DESK_ROLES.index(role)
        if not allowed:

            def article(word: str) -> str:
                return f"an {word}" if word[0] in "aeiou" else f"a {word}"

            raise Forbidden(
                f"token {self.name!r} is {article(self.role)}; this needs {article(role)} token"
            )


# The two rules lib/token_rules.lua applies in Redis, for telling and listing (never for
# letting a secret in: that is the script's).
def expired(record: dict[str, Any], now_ms: int) -> bool:
    """Is the token past its ``--expires``? Then none of its secrets works."""
    return "expires_ms" in record and now_ms >= int(record["expires_ms"])


def in_grace(record: dict[str, Any], now_ms: int) -> bool:
    """Does the secret a rotation replaced still work?"""
    return bool(record.get("previous_sha256")) and now_ms < int(record["previous_until_ms"])


def lapsed(record: dict[str, Any], now_ms: int) -> TokenLapsed:
    """Why and since when a secret the record knows (``status 4``) is refused."""
    name = str(record["name"])
    if expired(record, now_ms):
        at = _z(int(record["expires_ms"]))
        return TokenLapsed(
            f"token {name!r} expired at {at}", code="token_expired", token=name, expired_at=at
        )
    # The replaced secret, past its grace (no grace: it stopped when it was rotated).
    rotated_ms = int(datetime.fromisoformat(str(record["rotated_at"])).timestamp() * 1000)
    rotated, stopped = _z(rotated_ms), _z(int(record["previous_until_ms"]) or rotated_ms)
    return TokenLapsed(
        f"token {name!r} was rotated at {rotated}; this secret stopped working at {stopped}",
        code="token_rotated",
        token=name,
        expired_at=stopped,
        rotated_at=rotated,
    )


def standing(record: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """What ``token ls`` shows of a token's life: ``status`` (``active`` | ``expired``)
    and, while a rotation's grace lasts, ``old_secret_until`` (RFC 3339 UTC)."""
    if expired(record, now_ms):
        return {"status": "expired", "old_secret_until": None}
    grace = in_grace(record, now_ms)
    return {
        "status": "active",
        "old_secret_until": _z(int(record["previous_until_ms"])) if grace else None,
    }


def _z(ms: int) -> str:
    """``2026-12-06T18:00:00Z``: to the second, as people read and type it."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _principal(record: dict[str, Any] | None, sha: str) -> Principal | None:
    """The token behind a stored record, if the record is really that digest's."""
    # The lookup was by digest; compare it in constant time all the same. The script
    # checked expiry and grace; a rotated-out secret is the record's ``previous_sha256``.
    if record is None:
        return None
    current = secrets.compare_digest(str(record.get("sha256", "")), sha)
    previous = secrets.compare_digest(str(record.get("previous_sha256", "")), sha)
    if not (current or previous):
        return None
    role = record.get("role", "editor")  # tokens made before roles are editors
    return Principal(
        str(record["name"]), frozenset(record["channels"]), sha, role if role in ROLES else "editor"
    )


class Tokens:
    def __init__(self, store: Store, *, rate_per_minute: int = 300, burst: int = 60) -> None:
        self._store = store
        self._interval_ms = 60_000 / rate_per_minute
        self._burst = burst

    async def create(
        self,
        name: str,
        channels: list[str],
        role: str = "editor",
        *,
        expires: timedelta | None = None,
    ) -> str:
        """Make a token and return its secret; only its digest is kept. With ``expires``,
        it is refused (401) from then on, by every process."""
        if not TOKEN_NAME.fullmatch(name):
            raise InvalidRequest("token names are 1-64 letters, digits, '_', '.', '@' or '-'")
        if not channels:
            raise InvalidRequest("a token needs at least one channel (or '*')")
        if role not in ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(ROLES)} (got {role[:20]!r})")
        if expires is not None and not timedelta(0) < expires <= EXPIRES_MAX:
            raise _field_error("expires", "must be more than 0s and at most 10 years")
        secret = "tk_" + secrets.token_urlsafe(32)
        sha = digest(secret)
        now = utcnow()
        record: dict[str, Any] = {
            "name": name,
            "channels": sorted(set(channels)),
            "role": role,
            "created_at": now.isoformat(),
            "sha256": sha,
        }
        if expires is not None:
            record["expires_at"] = (now + expires).isoformat()
            record["expires_ms"] = int((now + expires).timestamp() * 1000)
        if not await self._store.tokens.create(name, sha, record):
            raise Conflict(f"a token named {name!r} already exists")
        return secret

    async def revoke(self, name: str) -> bool:
        return await self._store.tokens.revoke(name)

    async def rotate(self, name: str, *, grace: timedelta = timedelta(0)) -> str:
        """A new secret for ``name``; the old one keeps working for ``grace`` (``0``: it
        stops at once). A secret rotated out before that stops now."""
        if not timedelta(0) <= grace <= GRACE_MAX:
            raise _field_error("grace", "must be from 0s to 30d")
        secret = "tk_" + secrets.token_urlsafe(32)
        grace_ms = int(grace.total_seconds() * 1000)
        now_ms = int(time.time() * 1000)
        if not await self._store.tokens.rotate(
            name, digest(secret), now_ms=now_ms, grace_ms=grace_ms
        ):
            raise NotFound(f"no token named {name!r}")
        return secret

    async def list(self) -> list[dict[str, Any]]:
        """Every token with its ``standing``; never a secret or its digest."""
        hidden = {"sha256", "previous_sha256"}
        now_ms = int(time.time() * 1000)
        return [
            {k: v for k, v in t.items() if k not in hidden} | standing(t, now_ms)
            for t in await self._store.tokens.all()
        ]

    async def verify(self, secret: str) -> Principal | None:
        """The token behind a secret, or ``None`` (unknown, revoked or lapsed)."""
        try:
            return await self._known(secret)
        except Unauthorized:
            return None

    async def _known(self, secret: str) -> Principal:
        """The token behind a secret; ``401`` saying why not."""
        sha = digest(secret)
        now_ms = int(time.time() * 1000)
        status, record = await self._store.tokens.by_hash(sha, now_ms=now_ms)
        return _checked(status, record, sha, now_ms)

    async def reader(self, authorization: str | None, channel: str) -> Principal | None:
        """Who is reading: ``None`` for anonymous readers (no Authorization header), the
        token for the desk's view. A token that is wrong, or not for this channel, is
        refused rather than quietly served the public view."""
        if authorization is None:
            return None
        principal = await self._known(_secret(authorization))
        principal.require("viewer")  # an ops token reads no channel
        if not principal.may(channel):
            raise Forbidden(f"token {principal.name!r} may not read channel {channel!r}")
        return principal

    async def operator(self, authorization: str | None) -> Principal:
        """The ``ops`` token behind an ``Authorization`` header, for ``/metrics`` and
        ``/stats`` (or a ``chief``'s): ``404`` (as if absent) without a working token,
        ``403`` for a viewer or an editor."""
        try:
            principal = await self._known(_secret(authorization))
        except Unauthorized:
            raise NotFound("Not Found") from None
        principal.require(OPS_ROLE)
        return principal

    async def identify(self, authorization: str | None) -> Principal:
        """The token behind an ``Authorization`` header, whatever its channels (``401``
        when missing, wrong, revoked or lapsed). A read: nothing is counted."""
        return await self._known(_secret(authorization))

    async def authorize(
        self, authorization: str | None, channel: str, *, need: Role = WRITE_ROLE
    ) -> Principal:
        """Check an ``Authorization`` header for a write to ``channel`` and count the write
        against the token's rate (shared by every process): one Redis round trip. A
        forbidden write is not counted. Never echoes the token back. ``need``: the role
        a refusal names (the write's own; a role that writes at all is checked above)."""
        sha = digest(_secret(authorization))
        now_ms = int(time.time() * 1000)
        status, record, wait = await self._store.tokens.authorize(
            sha, channel, now_ms=now_ms, interval_ms=self._interval_ms, burst=self._burst
        )
        principal = _checked(status, record, sha, now_ms)
        if status == _FORBIDDEN:
            principal.check(channel)
            principal.require(need)
            principal.require(WRITE_ROLE)
        if status == _LIMITED:
            seconds = max(1, math.ceil(wait / 1000))
            raise RateLimited(
                f"too many writes for token {principal.name!r}; retry in {seconds}s",
                retry_after_s=seconds,
                author=principal.name,
            )
        return principal

    async def refund(self, principal: Principal) -> None:
        """Give back the write ``authorize`` counted: a replayed Idempotency-Key or a
        refused write wrote nothing, so neither a re-run import nor a typo is throttled."""
        if principal.digest:
            await self._store.tokens.refund(principal.digest, interval_ms=self._interval_ms)


def _checked(status: int, record: dict[str, Any] | None, sha: str, now_ms: int) -> Principal:
    """The token a lookup found, or the ``401`` every path answers: "expired at", "rotated
    at", or "unknown or revoked" (a secret the store never had, or no longer knows)."""
    principal = _principal(record, sha)
    if principal is None or record is None or status == _UNKNOWN:
        raise Unauthorized("unknown or revoked token")
    if status == _LAPSED:
        raise lapsed(record, now_ms)
    return principal


def _field_error(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", details=[{"field": field, "message": message}])


def _secret(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer token")
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("use Authorization: Bearer <token>")
    return secret.strip()
