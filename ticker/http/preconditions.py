"""Optimistic concurrency over HTTP: an item's ``ETag`` is its version (``"v3"``), and a
change may say which version it was made from, as ``If-Match`` and/or ``base_version``.

Deliberate choices (README, "Changes and versions"):
- The ETag is strong and names the item's version only. The desk's view also carries
  ``reach``, which moves without a new version; nothing here answers ``If-None-Match``,
  and the desk's view is ``no-store``, so no cache compares bytes by it.
- Only the desk's view (a token) carries the ETag: anonymous readers cannot change an
  item, and their view is another representation.
- ``If-Match`` takes ``*`` (any version: today's meaning) or a list of our ETags. A weak
  ETag (``W/"v3"``), a bare number or a tag ticker never gives is a 400 naming the
  header, not a mismatch: it is a client's mistake, and a silent 409 would hide it.
- A mismatch is a 409 ``stale`` with the item as it is now (RFC 9110 would say 412; the
  409 carries what a client needs to merge, for ``base_version`` too).
"""

from __future__ import annotations

import re

from ticker.domain.errors import InvalidRequest

_TAG = re.compile(r'"v([0-9]{1,15})"')
_FORM = 'If-Match must be * or the item\'s ETag, such as "v3" (with the quotes)'


def etag(version: int) -> str:
    return f'"v{version}"'


def _bad(message: str, code: str = "bad_if_match") -> InvalidRequest:
    return InvalidRequest(message, status_code=400, code=code)


def parse_if_match(header: str) -> frozenset[int] | None:
    """The versions an ``If-Match`` header allows; ``None`` for ``*`` (any)."""
    text = header.strip()
    if text == "*":
        return None
    versions = set()
    for part in text.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            raise _bad(
                f"If-Match: {tag[:40]} is a weak ETag; a change needs the strong one the"
                ' ETag header gives, such as "v3"'
            )
        found = _TAG.fullmatch(tag)
        if found is None:
            raise _bad(f"{_FORM}; got {tag[:40]!r}" if tag else _FORM)
        versions.add(int(found.group(1)))
    return frozenset(versions)


def precondition(if_match: str | None, base_version: int | None) -> frozenset[int] | None:
    """The versions a change may be made from (``None``: any), from the header and the
    body's ``base_version``; when both are sent they must agree (400)."""
    allowed = parse_if_match(if_match) if if_match is not None else None
    if base_version is None:
        return allowed
    if allowed is not None and base_version not in allowed:
        tags = ", ".join(etag(v) for v in sorted(allowed))
        raise _bad(
            f"If-Match ({tags}) and base_version ({base_version}) disagree; send one,"
            " or both for the same version",
            code="precondition_mismatch",
        )
    return frozenset({base_version})
