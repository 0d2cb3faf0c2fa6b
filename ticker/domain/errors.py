"""One exception tree. ``app.py`` maps each leaf to an HTTP status in one place.

* TickerError
  + StoreUnavailable      Redis cannot be reached (503, Retry-After)
  |  + NotDurable         applied, but not on as many replicas as asked (503 ``not_durable``)
  + NotFound              unknown channel or item (404)
  + Conflict              a concurrent change won; retry (409 ``conflict``, Retry-After)
  |  + Killed             the item was killed: final (409 ``killed``)
  |  + Expired            the item's time is up: it can no longer change (409 ``expired``)
  |  + TooManyPins        the channel has its most pins already (409 ``too_many_pins``)
  |  + Stale              the item moved on from the change's base version (409 ``stale``)
  |  + Duplicate          a post with the headline of a recent item (409 ``duplicate``)
  |  + Pending            the item waits for sign-off: approve or reject it (409 ``pending``)
  |  + NotPending         approve or reject of an item that waits for none (409 ``not_pending``)
  |  + Rejected           the item was rejected: it never goes on air (409 ``rejected``)
  + IdempotencyMismatch   an Idempotency-Key reused with a different request (422)
  + Unauthorized          missing, wrong or revoked token (401)
  |  + TokenLapsed        a token past its expiry (``token_expired``), or a secret past its
  |                       rotation's grace (``token_rotated``): says when (401)
  + Forbidden             the token may not act on this channel, or lacks the role (403)
  |  + OwnItem            under ``sign_off: all``, an approval by one who wrote the item
  |                       (403 ``own_item``)
  + RateLimited           too many writes for one token (429, Retry-After)
  + InvalidRequest        a request that fails validation (422, or the status given)
"""

from __future__ import annotations

from typing import Any


class TickerError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class StoreUnavailable(TickerError):
    status_code = 503
    code = "store_unavailable"


class NotDurable(StoreUnavailable):
    """The write was applied on the primary, but fewer copies than ``TICKER_ACK_*`` asks
    for confirmed it in time: it may be lost in a failover, so it is not acknowledged."""

    code = "not_durable"


class NotFound(TickerError):
    status_code = 404
    code = "not_found"


class Conflict(TickerError):
    status_code = 409
    code = "conflict"


class Killed(Conflict):
    code = "killed"


class Expired(Conflict):
    code = "expired"


class TooManyPins(Conflict):
    code = "too_many_pins"


class Stale(Conflict):
    """A change made from an older version (``If-Match``, ``base_version``): nothing was
    written, and the reply carries the item as it is now (the desk's view) to merge with."""

    code = "stale"

    def __init__(self, message: str, *, item: dict[str, Any]) -> None:
        super().__init__(message)
        self.item = item

    def body(self) -> dict[str, Any]:
        return {**super().body(), "item": self.item}


class Duplicate(Conflict):
    """A post whose headline is that of an item posted on the channel a moment ago
    (dupes.py): nothing was written, and the reply carries that item (the desk's view).
    ``"force": true`` posts it all the same."""

    code = "duplicate"

    def __init__(self, message: str, *, item: dict[str, Any]) -> None:
        super().__init__(message)
        self.item = item

    def body(self) -> dict[str, Any]:
        return {**super().body(), "item": self.item}


class Pending(Conflict):
    code = "pending"


class NotPending(Conflict):
    code = "not_pending"


class Rejected(Conflict):
    code = "rejected"


class IdempotencyMismatch(TickerError):
    status_code = 422
    code = "idempotency_key_reused"


class Unauthorized(TickerError):
    status_code = 401
    code = "unauthorized"


class TokenLapsed(Unauthorized):
    """A secret the token once had, no longer taken. The body names the token and the
    time, so its holder knows what to ask for; never the secret."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        token: str,
        expired_at: str,
        rotated_at: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.token = token
        self.expired_at = expired_at
        self.rotated_at = rotated_at

    def body(self) -> dict[str, Any]:
        body = super().body() | {"token": self.token, "expired_at": self.expired_at}
        if self.rotated_at is not None:
            body["rotated_at"] = self.rotated_at
        return body


class Forbidden(TickerError):
    status_code = 403
    code = "forbidden"


class OwnItem(Forbidden):
    code = "own_item"


class RateLimited(TickerError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int, author: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.author = author  # the token's name: its Idempotency-Key replays still answer


class InvalidRequest(TickerError):
    status_code = 422
    code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 422,
        code: str = "invalid_request",
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.status_code = status_code
        self.code = code


def unknown_channel(name: str) -> NotFound:
    """The one 404 for a channel that is not declared (its name cut short: it is input)."""
    return NotFound(f"unknown channel {name[:64]!r}")
