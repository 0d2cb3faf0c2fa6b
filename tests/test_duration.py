"""Durations as editors type them (``--ttl 30m``) and as the service prints them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from ticker.domain.duration import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("3600", timedelta(hours=1)),
        ("PT30M", timedelta(minutes=30)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        (" 30m ", timedelta(minutes=30)),
        ("6H", timedelta(hours=6)),
    ],
)
def test_editor_spellings(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3600, timedelta(hours=1)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(minutes=5), timedelta(minutes=5)),
    ],
)
def test_numbers_are_seconds_and_timedeltas_pass_through(value: Any, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "0s",
        "0m0s",
        "PT0S",
        0,
        0.0,
        timedelta(0),
        -5,
        timedelta(seconds=-1),
        "-PT5M",
    ],
)
def test_zero_and_negative_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("5parsecs", "'5parsecs' is not a duration; use e.g. '90s'"),
        ("", "is not a duration"),
        ("   ", "is not a duration"),
        ("-5", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("1h 30m", "is not a duration"),
        ("30 m", "is not a duration"),
        ("m30", "is not a duration"),
        ("h", "is not a duration"),
        ("1w", "is not a duration"),
        ("P", "not a valid ISO 8601 duration"),
        ("PT5X", "not a valid ISO 8601 duration"),
        (True, "must be a duration such as"),
        (False, "must be a duration such as"),
        (None, "must be a duration such as"),
        ([30], "must be a duration such as"),
    ],
)
def test_nonsense_is_refused_with_a_message(value: Any, says: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_duration(value)
    assert says in str(refused.value)


@pytest.mark.parametrize(
    "value",
    [
        "99999999999999d",
        "9" * 30,
        "9" * 30 + "s",
        10**20,
        float("inf"),
        float("nan"),
        "P9999999999D",
    ],
)
def test_absurdly_long_durations_are_a_value_error(value: Any) -> None:
    # Editors and API clients can type these; they must come back as a message, not a crash.
    with pytest.raises(ValueError):  # not OverflowError, which the API turns into a 500
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=90), "1m30s"),
        (timedelta(minutes=30), "30m"),
        (timedelta(hours=6), "6h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=2), "2d"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(0), "0s"),
    ],
)
def test_format_is_the_shortest_editor_spelling(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@pytest.mark.parametrize("text", ["90s", "30m", "6h", "1h30m", "2d", "PT45M", "86401"])
def test_what_is_printed_reads_back_the_same(text: str) -> None:
    value = parse_duration(text)
    assert parse_duration(format_duration(value)) == value


class Rule(BaseModel):
    ttl: Duration


def test_as_a_field_it_parses_and_serialises_as_editors_write_it() -> None:
    rule = Rule.model_validate({"ttl": "1h30m"})
    assert rule.ttl == timedelta(minutes=90)
    assert rule.model_dump_json() == '{"ttl":"1h30m"}'
    assert rule.model_dump() == {"ttl": timedelta(minutes=90)}
    with pytest.raises(ValidationError) as refused:
        Rule.model_validate({"ttl": "5parsecs"})
    [error] = refused.value.errors()
    assert error["loc"] == ("ttl",) and "not a duration" in error["msg"]
