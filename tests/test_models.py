"""What an editor may send: ``ItemIn`` and ``ItemPatch`` validation, field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ticker.domain.models import HEADLINE_MAX, Item, ItemIn, ItemPatch, Kind, Status


def refusal(model: type[BaseModel], data: dict[str, Any]) -> dict[str, str]:
    """Validate ``data``, expecting a refusal; the failing fields and their messages."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


# -- headline --------------------------------------------------------------------------


def test_headline_is_trimmed() -> None:
    assert (
        ItemIn(headline="  \t Rotterdam shooter arrested \n ").headline
        == "Rotterdam shooter arrested"
    )


@pytest.mark.parametrize("text", ["", " ", "\t\n ", "\u3000"])
def test_empty_or_blank_headline_is_refused(text: str) -> None:
    assert "must not be empty" in refusal(ItemIn, {"headline": text})["headline"]


@pytest.mark.parametrize(
    ("letter", "name"),
    [
        ("x", "ascii"),
        ("\u0639", "arabic, 2 bytes in UTF-8"),
        ("\U0001f6a8", "emoji, 4 bytes in UTF-8"),
    ],
)
def test_headline_limit_counts_characters_not_bytes(letter: str, name: str) -> None:
    longest = letter * HEADLINE_MAX
    assert ItemIn(headline=longest).headline == longest
    message = refusal(ItemIn, {"headline": letter * (HEADLINE_MAX + 1)})["headline"]
    assert "at most 280 characters" in message and "got 281" in message


def test_headline_limit_applies_after_trimming() -> None:
    assert len(ItemIn(headline=f"  {'x' * HEADLINE_MAX}  ").headline) == HEADLINE_MAX


@pytest.mark.parametrize(
    "ch",
    [
        "\n",
        "\r",
        "\x00",
        "\t",
        "\x1b",
        "\x7f",  # C0 and DEL
        "\x85",
        "\x9b",  # C1: NEL, CSI
        "\u2028",
        "\u2029",  # line and paragraph separators
        "\ud800",
        "\udfff",  # lone surrogates
    ],
    ids=lambda ch: f"U+{ord(ch):04X}",
)
def test_control_and_line_break_characters_inside_a_headline_are_refused(ch: str) -> None:
    message = refusal(ItemIn, {"headline": f"Rotterdam{ch}shooter"})["headline"]
    assert f"U+{ord(ch):04X}" in message and "one line" in message


def test_lone_surrogate_in_json_is_refused() -> None:
    with pytest.raises(ValidationError):
        ItemIn.model_validate_json('{"headline": "Rotterdam \\ud83d shooter"}')


@pytest.mark.parametrize(
    "text",
    [
        "\u200f\u0627\u0644\u0634\u0631\u0637\u0629 \u0627\u0644\u0647\u0648\u0644\u0646\u062f\u064a\u0629",  # RLM + Arabic  # noqa: E501
        "Breaking \U0001f6a8 Rotterdam",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 family emoji with ZWJ",
        "Caf\u00e9 \u2014 \u00ab quoted \u00bb",
    ],
)
def test_rtl_marks_emoji_and_typography_are_accepted(text: str) -> None:
    assert ItemIn(headline=text).headline == text


def test_headline_must_be_a_string() -> None:
    assert "headline" in refusal(ItemIn, {"headline": 42})
    assert "headline" in refusal(ItemIn, {})


# -- source, urgency, slugs, language ------------------------------------------------


def test_source_is_one_short_line() -> None:
    assert ItemIn(headline="x", source="  Dutch Police ").source == "Dutch Police"
    assert "at most 80" in refusal(ItemIn, {"headline": "x", "source": "s" * 81})["source"]
    assert "U+000A" in refusal(ItemIn, {"headline": "x", "source": "Dutch\nPolice"})["source"]


@pytest.mark.parametrize("urgency", [1, 5, 9])
def test_urgency_one_to_nine(urgency: int) -> None:
    assert ItemIn(headline="x", urgency=urgency).urgency == urgency


@pytest.mark.parametrize("urgency", [0, 10, -1, "2", 2.0, True, None])
def test_urgency_outside_one_to_nine_or_not_an_integer_is_refused(urgency: Any) -> None:
    assert "urgency" in refusal(ItemIn, {"headline": "x", "urgency": urgency})


def test_slugs_are_kept_in_order_without_duplicates() -> None:
    item = ItemIn(
        headline="x", regions=["europe", "middle-east", "europe", "n2"], categories=["crime"]
    )
    assert item.regions == ["europe", "middle-east", "n2"]
    assert item.categories == ["crime"]


@pytest.mark.parametrize(
    "slug",
    [
        "Europe",
        "europe west",
        "-europe",
        "europe-",
        "middle--east",
        "middle_east",
        "",
        "x" * 33,
        "\u00e9urope",
    ],
)
def test_bad_slugs_are_refused(slug: str) -> None:
    errors = refusal(ItemIn, {"headline": "x", "regions": [slug]})
    assert "not a slug" in errors["regions"]
    assert "categories" in refusal(ItemIn, {"headline": "x", "categories": [slug]})


def test_at_most_ten_slugs() -> None:
    assert len(ItemIn(headline="x", regions=[f"r{n}" for n in range(10)]).regions) == 10
    errors = refusal(ItemIn, {"headline": "x", "regions": [f"r{n}" for n in range(11)]})
    assert "at most 10" in errors["regions"]


def test_slugs_must_be_a_list() -> None:
    assert "regions" in refusal(ItemIn, {"headline": "x", "regions": "europe"})


@pytest.mark.parametrize("tag", ["en", "ar", "es-419", "zh-Hant-TW", "fil", "EN-gb"])
def test_language_tags_are_accepted(tag: str) -> None:
    assert ItemIn(headline="x", language=tag).language == tag


@pytest.mark.parametrize(
    "tag", ["", "e", "english", "en_US", "en-", "en-toolongsubtag", "e1", "en us", "x" * 36]
)
def test_bad_language_tags_are_refused(tag: str) -> None:
    assert "language tag" in refusal(ItemIn, {"headline": "x", "language": tag})["language"]


# -- link ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        "https://example.com/rotterdam",
        "http://example.com",
        "HTTPS://Example.com",
        "https://example.com/a?b=c#d",
        "https://xn--80ak6aa92e.com/",
        "https://[2001:db8::1]:8443/x",
    ],
)
def test_http_and_https_links_are_accepted(link: str) -> None:
    assert ItemIn(headline="x", link=link).link == link


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "ftp://example.com/file",
        "//example.com/protocol-relative",
        "/news/1",
        "example.com",
        "https://",
        "https:///path-only",
        "https://exa mple.com/",
        "https://example.com/\nSet-Cookie: x=1",
        "java\tscript:alert(1)",
        "https://example.com/\u2028",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_other_links_are_refused(link: str) -> None:
    assert "link" in refusal(ItemIn, {"headline": "x", "link": link})
    assert "link" in refusal(ItemPatch, {"link": link})


# -- times -----------------------------------------------------------------------------


def test_datetimes_without_a_time_zone_are_refused() -> None:
    for field in ("expires_at", "embargoed_until"):
        errors = refusal(ItemIn, {"headline": "x", field: "2026-11-26T18:00:00"})
        assert "time zone" in errors[field]
    assert "time zone" in refusal(ItemPatch, {"expires_at": "2026-11-26T18:00:00"})["expires_at"]


def test_datetimes_with_a_time_zone_are_kept_in_utc() -> None:
    item = ItemIn(
        headline="x",
        expires_at="2026-11-26T20:00:00+02:00",  # type: ignore[arg-type]
        embargoed_until="2026-11-26T17:00:00Z",  # type: ignore[arg-type]
    )
    assert item.expires_at == datetime(2026, 11, 26, 18, tzinfo=UTC)
    assert item.expires_at is not None and item.expires_at.utcoffset() == timedelta(0)
    assert item.embargoed_until == datetime(2026, 11, 26, 17, tzinfo=UTC)


def test_ttl_takes_editor_durations() -> None:
    assert ItemIn(headline="x", ttl="1h30m").ttl == timedelta(minutes=90)  # type: ignore[arg-type]
    assert "ttl" in refusal(ItemIn, {"headline": "x", "ttl": "5parsecs"})


def test_a_huge_ttl_is_a_validation_error() -> None:
    # Anything an editor can type must come back as a field error (a 422), never a crash.
    assert "ttl" in refusal(ItemIn, {"headline": "x", "ttl": "99999999999999d"})
    assert "ttl" in refusal(ItemPatch, {"ttl": 10**20})


# -- the rest of the body ----------------------------------------------------------------


def test_defaults() -> None:
    item = ItemIn(headline="x")
    assert item.urgency == 5 and item.status == "usable"
    assert item.regions == [] and item.categories == [] and item.link is None
    assert item.expires_at is None and item.ttl is None and item.language is None


def test_status_may_only_be_usable_or_withheld() -> None:
    assert ItemIn(headline="x", status="withheld").status == "withheld"
    assert "status" in refusal(ItemIn, {"headline": "x", "status": "canceled"})
    assert "status" in refusal(ItemPatch, {"status": "canceled"})


def test_unknown_fields_are_refused() -> None:
    assert "colour" in refusal(ItemIn, {"headline": "x", "colour": "red"})
    assert "author" in refusal(ItemIn, {"headline": "x", "author": "someone-else"})
    assert "uri" in refusal(ItemPatch, {"uri": "other"})


def test_a_patch_carries_only_what_changes() -> None:
    patch = ItemPatch(headline="  Shooter arrested ")
    assert patch.headline == "Shooter arrested"
    assert patch.model_dump(exclude_unset=True) == {"headline": "Shooter arrested"}
    assert ItemPatch().model_dump(exclude_unset=True) == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("headline", ""),
        ("headline", "a\nb"),
        ("headline", "x" * 281),
        ("urgency", 0),
        ("regions", ["Bad Slug"]),
        ("source", "a\rb"),
    ],
)
def test_a_patch_is_checked_like_a_post(field: str, value: Any) -> None:
    assert field in refusal(ItemPatch, {field: value})


# -- the stored item ---------------------------------------------------------------------


def test_an_item_is_visible_only_when_usable_released_and_unexpired() -> None:
    now = datetime(2026, 11, 26, 18, tzinfo=UTC)
    base = Item(
        uri="a1",
        channel="en",
        version=1,
        headline="x",
        language="en",
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(hours=1),
        author="editor",
    )
    assert base.visible_at(now)
    assert not base.visible_at(now + timedelta(hours=1))
    assert not base.model_copy(update={"status": Status.WITHHELD}).visible_at(now)
    assert not base.model_copy(update={"status": Status.CANCELED}).visible_at(now)
    embargoed = base.model_copy(update={"embargoed_until": now + timedelta(minutes=5)})
    assert not embargoed.visible_at(now)
    assert embargoed.visible_at(now + timedelta(minutes=5))


def test_an_advisory_is_never_on_air_never_public_and_never_waiting() -> None:
    now = datetime(2026, 11, 26, 18, tzinfo=UTC)
    note = Item(
        uri="a1",
        channel="en",
        version=1,
        headline="Statement expected 18:30",
        language="en",
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(hours=1),
        author="editor",
        kind=Kind.ADVISORY,
    )
    soon = now + timedelta(minutes=5)
    for state in (
        {},
        {"status": Status.WITHHELD},
        {"embargoed_until": soon},
        {"embargoed_until": now - timedelta(minutes=5)},
    ):
        version = note.model_copy(update=state)
        for moment in (now, soon + timedelta(minutes=1)):
            assert not version.visible_at(moment), state
            assert not version.public_at(moment), state
            assert version.waiting_for(moment) is None, state
    headline = note.model_copy(update={"kind": Kind.HEADLINE})
    assert headline.visible_at(now) and headline.public_at(now)
    # kind is the desk's: the public view is as it was before kinds, to the byte.
    assert "kind" not in headline.public() and '"kind"' not in headline.public_json()
    assert note.model_dump(mode="json")["kind"] == "advisory"


def test_an_item_without_a_kind_is_a_headline() -> None:
    raw = '{"uri":"a","channel":"en","version":1,"headline":"x","language":"en",'
    raw += '"created_at":"2026-11-26T18:00:00Z","updated_at":"2026-11-26T18:00:00Z",'
    raw += '"expires_at":"2026-11-26T19:00:00Z","author":"e"}'
    assert Item.model_validate_json(raw).kind is Kind.HEADLINE


@pytest.mark.parametrize("kind", ["advisory", "headline", None, 3])
def test_a_correction_may_not_name_a_kind(kind: Any) -> None:
    assert "fixed when it is posted" in refusal(ItemPatch, {"kind": kind})["kind"]
