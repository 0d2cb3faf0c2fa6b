"""The duplicate rule: two editors often post the same flash.

A post is refused (409 ``duplicate``, with the other item) when its headline, normalized,
is that of an item posted on the same channel within the channel's ``duplicate_window``
(10 minutes by default), unless it says ``"force": true``. ``normal_headline`` is the one
definition of "the same headline", ``blocks`` the one definition of "a duplicate of that
item"; the desk calls both. The lookup and the note of a post are made in the commit
script itself (store/lua/lib/dupes.lua), so two posts at the same instant cannot both pass.

Deliberate choices (read before "fixing"):
- Folded, as two editors typing the same flash differ: Unicode forms (NFKC: ``ﬁ`` and
  ``fi``, full-width letters, a decomposed ``é``), case (``str.casefold``), runs of
  white space, format characters (zero-width spaces and joiners, RTL and LTR marks: they
  show as nothing), Arabic tatweel (a stretched letter) and Arabic harakat (optional
  vowel marks, mostly left out in news copy), and decimal digits of other scripts
  (``٣`` is ``3``).
- Punctuation is folded: between two letters, ``.`` and apostrophes join (``U.S.`` is
  ``US``, ``don’t`` is ``dont``); between two digits, ``.`` and ``,`` stay (``3.5`` is
  not ``35``); anywhere else a punctuation mark is a space (``arrested.`` is
  ``arrested``, ``al-Assad`` is ``al Assad``).
- Kept: every word, digit and symbol (``three`` is not ``four``, ``3`` is not ``4``,
  ``€5`` is not ``$5``; ``%``, ``#`` and ``&`` are punctuation), and letters with their
  accents: in Spanish an accent can change the word (``sí``/``si``, ``año``/``ano``), so
  ``é`` is not ``e``. Arabic letters are not merged either (``أ`` is not ``ا``): only
  marks a writer may leave out are.
- A headline with nothing left (only punctuation) is never a duplicate.
- Killed items do not count: a wrong item killed and posted again is not a duplicate.
  Held, embargoed and expired ones do (they were posted). An item whose headline was
  corrected since counts by its headline as it is now.
- Only posts are checked and noted; a correction is neither. An ``Idempotency-Key``
  replay gets its first reply before the rule is looked at.
- Redis holds a SHA-256 of the normal form, never the text; each entry leaves after the
  window, and a purge takes the item's entries out at once (store/lua/purge.lua).
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime, timedelta

from ticker.domain.errors import Duplicate
from ticker.domain.models import Item, Status
from ticker.domain.text import default_ignorable
from ticker.settings import Channel
from ticker.store import HeadlineNote

_TATWEEL = "\u0640"
# Arabic harakat and the other optional marks of the Arabic block (tanwin, shadda, sukun,
# superscript alef, Quranic annotation signs).
_ARABIC_MARKS = (
    (0x0610, 0x061A), (0x064B, 0x065F), (0x0670, 0x0670),
    (0x06D6, 0x06DC), (0x06DF, 0x06E8), (0x06EA, 0x06ED),
)  # fmt: skip
# Punctuation that joins two letters rather than separating words.
_JOINERS = frozenset(".'\u2018\u2019")
# Between two digits: decimal and thousands separators (Arabic's are the same marks).
_IN_NUMBERS = {".": ".", ",": ",", "\u066b": ".", "\u066c": ","}
# Statuses whose item does not count: it never went out (sign-off's ``rejected``) or was
# taken back (``canceled``, a kill).
SPENT = frozenset({Status.CANCELED.value, "rejected"})


def _dropped(ch: str) -> bool:
    cp = ord(ch)
    return (
        ch == _TATWEEL
        or any(low <= cp <= high for low, high in _ARABIC_MARKS)
        or default_ignorable(ch)
    )


def normal_headline(text: str) -> str:
    """The headline as the duplicate rule compares it (see the module's docstring)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    chars = [
        str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in folded if not _dropped(ch)
    ]
    out: list[str] = []
    for i, ch in enumerate(chars):
        if unicodedata.category(ch)[0] != "P":
            out.append(ch)
            continue
        before = chars[i - 1] if i else ""
        after = chars[i + 1] if i + 1 < len(chars) else ""
        if before.isdecimal() and after.isdecimal() and ch in _IN_NUMBERS:
            out.append(_IN_NUMBERS[ch])
        elif not (before.isalnum() and after.isalnum() and ch in _JOINERS):
            out.append(" ")
    return " ".join("".join(out).split())


def digest(normal: str) -> str:
    """What Redis holds for a normal headline: its SHA-256, never the text."""
    return hashlib.sha256(normal.encode()).hexdigest()


def note(ch: Channel, headline: str, now: datetime, *, force: bool) -> HeadlineNote | None:
    """A post's part in the rule: its headline noted, and checked unless ``force``;
    ``None`` when the channel has no window or nothing of the headline is left."""
    normal = normal_headline(headline)
    if ch.duplicate_window is None or not normal:
        return None
    return HeadlineNote(
        digest=digest(normal),
        at_ms=int(now.timestamp() * 1000),
        window_ms=int(ch.duplicate_window / timedelta(milliseconds=1)),
        check=not force,
    )


def blocks(other: Item, headline: str) -> bool:
    """Is a post of ``headline`` a duplicate of ``other``, which the index found?"""
    if other.status.value in SPENT:
        return False
    return normal_headline(other.headline) == normal_headline(headline)


def refusal(other: Item) -> Duplicate:
    """The 409 for a post that duplicates ``other`` (the desk's view of it)."""
    return Duplicate(
        f"{other.author} posted the same headline at {other.created_at.isoformat()}"
        f' ({other.uri}, {other.status.value}); send "force": true to post it all the same',
        item=other.model_dump(mode="json"),
    )
