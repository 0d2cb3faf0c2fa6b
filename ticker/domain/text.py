"""What counts as one line of visible text (a headline, a source, a reason, a notice):
no controls or line breaks, and something a reader can see, not only spaces, fillers,
marks or format characters. The duplicate rule (dupes.py) reads the same Unicode facts."""

from __future__ import annotations

import unicodedata

# Categories a one-line text must not contain: controls (CR, LF, NUL, C1 such as NEL),
# lone surrogates (not encodable), and the Unicode line and paragraph separators.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


# What renders visibly. A one-line text needs at least one character of a letter, number,
# punctuation or symbol category (L*, N*, P*, S*) that is not Default_Ignorable_Code_Point
# and not known to render blank. Python has no DerivedCoreProperties, so the property is
# derived here the way UAX #44 (DerivedCoreProperties.txt) derives it:
#   Default_Ignorable_Code_Point = Other_Default_Ignorable_Code_Point + Cf
#     + Variation_Selector - White_Space - FFF9..FFFB (interlinear annotation)
#     - 13430..1343F (Egyptian hieroglyph format) - Prepended_Concatenation_Mark
# (the two lists below are PropList.txt's; tests/security/test_hostile_values.py checks
# the result against the published table). Within L/N/P/S this leaves the Hangul fillers
# U+115F, U+1160, U+3164 and U+FFA0; the other members are Cf or Mn, outside them anyway.
_OTHER_DEFAULT_IGNORABLE = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x2065, 0x2065),
    (0x3164, 0x3164), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0xE0000, 0xE0000),
    (0xE0002, 0xE001F), (0xE0080, 0xE00FF), (0xE01F0, 0xE0FFF),
)  # fmt: skip


_VARIATION_SELECTOR = ((0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))


_FORMAT_BUT_SHOWN = (
    (0xFFF9, 0xFFFB), (0x13430, 0x1343F),
    # Prepended_Concatenation_Mark
    (0x0600, 0x0605), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891),
    (0x08E2, 0x08E2), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
)  # fmt: skip


# Graphic by category, blank on screen: BRAILLE PATTERN BLANK, MUSICAL SYMBOL NULL NOTEHEAD.
_RENDERS_BLANK = frozenset({0x2800, 0x1D159})


_VISIBLE_CATEGORIES = frozenset("LNPS")


def _within(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= cp <= high for low, high in ranges)


def default_ignorable(ch: str) -> bool:
    """Unicode's Default_Ignorable_Code_Point: characters shown as nothing when unsupported."""
    cp = ord(ch)
    if _within(cp, _OTHER_DEFAULT_IGNORABLE) or _within(cp, _VARIATION_SELECTOR):
        return True
    return (
        unicodedata.category(ch) == "Cf" and not ch.isspace() and not _within(cp, _FORMAT_BUT_SHOWN)
    )


def visible(ch: str) -> bool:
    """Renders as something: a letter, number, punctuation or symbol that is not blank."""
    return (
        unicodedata.category(ch)[0] in _VISIBLE_CATEGORIES
        and ord(ch) not in _RENDERS_BLANK
        and not default_ignorable(ch)
    )


def one_line(value: str, *, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty or only whitespace")
    if len(value) > limit:
        raise ValueError(f"must be at most {limit} characters (got {len(value)})")
    if not any(visible(ch) for ch in value):
        raise ValueError(
            "must contain visible text, not only spaces, fillers, marks or format characters"
        )
    for ch in value:
        if unicodedata.category(ch) in FORBIDDEN_CATEGORIES:
            raise ValueError(
                f"must be one line of text: control or line-break character U+{ord(ch):04X}"
                " is not allowed"
            )
    return value
