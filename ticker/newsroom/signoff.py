"""Sign-off: which posts wait for a second person, and who may approve, reject or change
them. Pure rules; the desk (newsroom/) calls them with the item it read, every way in
(the API, the CLI through it, the web desk) ends there.

The life of a post that waits (README, "Sign-off"): it is stored ``pending``, off air and
out of every anonymous read, in the queue. An editor or a chief approves it (a new
version, ``usable``, ``approved_by`` set: on air now, or at its embargo) or rejects it
with a note (a new version, ``rejected``: listed in the queue with its note until it
expires or is withdrawn, never on air).

Deliberate choices (read before fixing):

* A post that waits may not also ask ``withheld``: it is off air until approved anyway,
  and approval is the release. An approver who wants it later sets an embargo first (a
  correction of the pending item) or approves later.
* The approved version keeps the author of the words (``author``); the approver is
  ``approved_by``, kept on the versions after it. The audit list names the approver.
* Under ``sign_off: all`` the approver may not be anyone who wrote a version of the
  item: the second person is one who did not touch the words.
* A contributor owns the items it posted (the first version's author), whoever corrected
  them since; it may correct its own pending items and withdraw (kill) its own pending
  or rejected ones, nothing else: holds, releases, pins, purges, approvals are an
  editor's. Once approved, its item is the desk's.
* Hold and release (``status`` in a correction) do not apply to an item waiting for
  sign-off, nor to a rejected one (409): approve or reject it instead.
* A rejected item is final: no correction, no approval (409 ``rejected``); a kill still
  works. To try again, post a new item.
* Corrections of an item already signed off do not wait again, under ``all`` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ticker.domain.errors import (
    Expired,
    Forbidden,
    InvalidRequest,
    Killed,
    NotPending,
    OwnItem,
    Pending,
    Rejected,
)
from ticker.domain.models import Item, Status
from ticker.newsroom.auth import DESK_ROLES, Role
from ticker.settings import Channel

CONTRIBUTOR = "contributor"
# Approving and rejecting: an editor's (auth.DESK_ROLES order: a chief too).
SIGN_OFF_ROLE: Role = "editor"
# Statuses of an item that waits for, or was refused, sign-off.
AWAITING = frozenset({Status.PENDING, Status.REJECTED})

Decision = Literal["approve", "reject"]


def waits(role: str, ch: Channel) -> bool:
    """Does a post by this role on this channel wait for sign-off?"""
    return role == CONTRIBUTOR or ch.sign_off == "all"


def post_status(role: str, ch: Channel, asked: str) -> Status:
    """The status a new post is stored with (422 when it waits and asks ``withheld``)."""
    if not waits(role, ch):
        return Status(asked)
    if asked == Status.WITHHELD:
        message = (
            "a post that waits for sign-off cannot also be withheld: it stays off air until"
            " an editor approves it"
        )
        raise InvalidRequest(
            f"status: {message}", details=[{"field": "status", "message": message}]
        )
    return Status.PENDING


def _refused(item: Item) -> Rejected:
    note = f": {item.rejection_note}" if item.rejection_note else ""
    return Rejected(
        f"item {item.uri!r} was rejected by {item.rejected_by}{note}; it never goes on air"
        " (post a new item instead)"
    )


def check_decision(
    decision: Decision,
    *,
    by: str,
    role: str,
    item: Item,
    writers: Iterable[str],
    ch: Channel,
    note: str | None,
    expired: bool,
) -> bool:
    """May ``by`` approve (or reject) ``item`` now? ``True``: do it; ``False``: it is done
    already, by this same decision (a retry: nothing to write). Raises the refusal:
    403 for the role or (``sign_off: all``) for one of the ``writers`` approving; 409 for
    the item's state (killed, expired, rejected, not waiting)."""
    if role not in DESK_ROLES or DESK_ROLES.index(role) < DESK_ROLES.index(SIGN_OFF_ROLE):
        article = "an" if role[:1] in "aeiou" else "a"
        raise Forbidden(
            f"token {by!r} is {article} {role}; approving and rejecting need an editor token"
        )
    if item.status is Status.CANCELED:
        raise Killed(f"item {item.uri!r} was killed and can no longer change")
    if item.status is Status.REJECTED:
        if decision == "reject" and item.rejection_note == note:
            return False  # the same rejection again
        raise _refused(item)
    if item.status is not Status.PENDING:
        if decision == "approve" and item.approved_by is not None:
            return False  # approved already: its approval stands
        done = f"approved by {item.approved_by}" if item.approved_by else "never waited for it"
        raise NotPending(
            f"item {item.uri!r} does not wait for sign-off (status {item.status}, {done});"
            " a kill takes it off air"
        )
    if expired:
        raise Expired(f"item {item.uri!r} has expired and can no longer change")
    if decision == "approve" and ch.sign_off == "all" and by in set(writers):
        raise OwnItem(
            f"token {by!r} wrote item {item.uri!r}; on channel {ch.name!r} (sign_off: all)"
            " another person approves it"
        )
    return True


def check_change(
    *,
    by: str,
    role: str,
    item: Item,
    poster: str | None,
    kill: bool,
    changes_status: bool = False,
) -> None:
    """May ``by`` correct (or, ``kill``, withdraw) ``item``? ``poster``: who posted it
    (the first version's author; needed for a contributor). Raises 403 or 409."""
    if role == CONTRIBUTOR:
        if poster != by:
            raise Forbidden(
                f"token {by!r} is a contributor: it may change only its own items waiting for"
                f" sign-off; item {item.uri!r} was posted by {poster or 'another token'}"
            )
        if changes_status:
            raise Forbidden(
                f"token {by!r} is a contributor: holding and releasing need an editor token"
            )
        if item.status not in (Status.PENDING, Status.REJECTED, Status.CANCELED):
            state = "was approved" if item.approved_by else f"is {item.status}"
            raise Forbidden(
                f"token {by!r} is a contributor: item {item.uri!r} {state}, and only an editor"
                " may change it now"
            )
    if kill:
        return
    if item.status is Status.REJECTED:
        raise _refused(item)
    if item.status is Status.PENDING and changes_status:
        raise Pending(
            f"item {item.uri!r} waits for sign-off: approve or reject it (POST"
            f" /channels/{item.channel}/items/{item.uri}/approve), it cannot be held or released"
        )
