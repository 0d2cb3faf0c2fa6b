"""Values that used to pass validation and should not: times that overflow in UTC, text
anchored with ``$`` (which takes a final newline), headlines that render as nothing.
Each is a 422 naming the field, and nothing is written."""

from __future__ import annotations

import unicodedata
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.helpers import make_token
from tests.redis_data import stream_len
from ticker.domain.models import ItemIn
from ticker.domain.text import default_ignorable
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio

# Default_Ignorable_Code_Point, as published in DerivedCoreProperties.txt (Unicode 15.0):
# the independent table the derivation in models.py must reproduce.
DERIVED_CORE_PROPERTIES_DI = """
00AD 034F 061C 115F..1160 17B4..17B5 180B..180D 180E 180F 200B..200F 202A..202E
2060..2064 2065 2066..206F 3164 FE00..FE0F FEFF FFA0 FFF0..FFF8 1BCA0..1BCA3 1D173..1D17A
E0000 E0001 E0002..E001F E0020..E007F E0080..E00FF E0100..E01EF E01F0..E0FFF
"""
# Graphic by category, blank on screen.
RENDERS_BLANK = {0x2800, 0x1D159}


def _table() -> frozenset[int]:
    points: set[int] = set()
    for part in DERIVED_CORE_PROPERTIES_DI.split():
        low, _, high = part.partition("..")
        points.update(range(int(low, 16), int(high or low, 16) + 1))
    return frozenset(points)


DEFAULT_IGNORABLE = _table()


def shows(ch: str) -> bool:
    """The property, from the published table: a letter, number, punctuation or symbol
    that is neither default-ignorable nor known to render blank."""
    return (
        unicodedata.category(ch)[0] in "LNPS"
        and ord(ch) not in DEFAULT_IGNORABLE
        and ord(ch) not in RENDERS_BLANK
    )


def test_default_ignorable_matches_the_published_table() -> None:
    derived = {cp for cp in range(0x110000) if default_ignorable(chr(cp))}
    assert derived == DEFAULT_IGNORABLE


BLANK_HEADLINES = [
    "\u3164",
    "\u3164\u3164\u3164",
    "\u2800\u2800",
    "\u115f",
    "\u1160\u1160",
    "\uffa0",
    "\u180e",
    "\U000e0041\U000e0042",
    "\ufe0f",
    "\U000e0100",
    "\u200d",
    "\u200b\u200c",
    "\u2060\u2061\u2062\u2063\u2064",
    "\u034f",
    "\u17b4\u17b5",
    "\u00ad",
    "\u061c",
    "\U0001d159",
    "\U0001bca0",
    "\U0001d173",
    "\u3000\u3164 \u2800",
    "\u0301\u0301",
    "\u20dd",
    "\ufeff\u3164",
    "\u2066\u2069",
    "\U000e0001\U000e007f",
    "\ue000",
]
VISIBLE_HEADLINES = [
    "a",
    "\u0661",
    "!",
    "\u20ac",
    "\u3164a",
    "\U0001f4f0",
    "\u0627\u0644\u0634\u0631\u0637\u0629",
    "\u1100",
    "\u00b2",
]


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40))
@hsettings(max_examples=3000, deadline=None, database=None)
def test_any_accepted_headline_contains_a_visible_character(text: str) -> None:
    try:
        item = ItemIn(headline=text, source=text)
    except ValidationError:
        return
    assert any(shows(ch) for ch in item.headline)
    assert item.source is not None and any(shows(ch) for ch in item.source)


@given(
    st.lists(
        st.sampled_from(sorted(DEFAULT_IGNORABLE | RENDERS_BLANK | {0x20, 0x3000})),
        min_size=1,
        max_size=30,
    )
)
@hsettings(max_examples=500, deadline=None, database=None)
def test_headlines_of_blank_characters_only_are_refused(points: list[int]) -> None:
    with pytest.raises(ValidationError):
        ItemIn(headline="".join(map(chr, points)))


async def test_blank_headlines_and_sources_get_422_and_visible_ones_201(
    server: tuple[str, Any], settings: Settings, token: str
) -> None:
    before = stream_len(settings)
    async with httpx.AsyncClient(
        base_url=server[0], timeout=5, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        for blank in BLANK_HEADLINES:
            for body, field in (
                ({"headline": blank}, "headline"),
                ({"headline": "ok", "source": blank}, "source"),
            ):
                r = await http.post("/channels/en/items", json=body)
                assert r.status_code == 422, (blank.encode("unicode_escape"), r.text)
                assert r.json()["details"][0]["field"] == field
        assert stream_len(settings) == before
        for text in VISIBLE_HEADLINES:
            # "force": several are the same words once fillers are dropped (dupes.py).
            r = await http.post("/channels/en/items", json={"headline": text, "force": True})
            assert r.status_code == 201, (text, r.text)


OUT_OF_RANGE_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999-23:59",
]


@pytest.mark.parametrize("field", ["expires_at", "embargoed_until"])
async def test_times_out_of_range_get_422_naming_the_field(
    server: tuple[str, Any], settings: Settings, token: str, field: str
) -> None:
    before = stream_len(settings)
    async with httpx.AsyncClient(
        base_url=server[0], timeout=5, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        item = (await http.post("/channels/en/items", json={"headline": "x"})).json()
        for value in OUT_OF_RANGE_TIMES:
            r = await http.post("/channels/en/items", json={"headline": "h", field: value})
            assert r.status_code == 422, (value, r.status_code, r.text[:200])
            assert r.json()["details"][0]["field"] == field
            if field == "expires_at":
                r = await http.patch(f"/channels/en/items/{item['uri']}", json={field: value})
                assert r.status_code == 422, (value, r.status_code, r.text[:200])
                assert r.json()["details"][0]["field"] == field
    assert stream_len(settings) == before + 1


TRAILING_NEWLINE: list[tuple[dict[str, Any], str]] = [
    ({"regions": ["europe\n"]}, "regions"),
    ({"categories": ["politics\n"]}, "categories"),
    ({"language": "en\n"}, "language"),
    ({"regions": ["europe\r\n"]}, "regions"),
    ({"ttl": "\u0663h"}, "ttl"),
    ({"ttl": "9" * 5000}, "ttl"),
    ({"ttl": "9" * 5000 + "s"}, "ttl"),
]


async def test_a_final_newline_does_not_pass_a_pattern(
    server: tuple[str, Any], settings: Settings, token: str
) -> None:
    before = stream_len(settings)
    async with httpx.AsyncClient(
        base_url=server[0], timeout=5, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        for extra, field in TRAILING_NEWLINE:
            r = await http.post("/channels/en/items", json={"headline": "h", **extra})
            assert r.status_code == 422, (extra, r.status_code, r.text[:200])
            assert r.json()["details"][0]["field"].split(".")[0] == field
        r = await http.get("/channels/en/events", params={"region": "europe\n"})
        assert r.status_code == 422
    assert stream_len(settings) == before


def test_names_with_a_final_newline_are_refused(settings: Settings) -> None:
    with pytest.raises(ValidationError):
        Channel(name="en\n")
    with pytest.raises(Exception, match="token names"):
        make_token(settings, "editor\n", ["*"])
