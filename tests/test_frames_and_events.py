"""Stream entries to SSE bytes: framing that nothing can break, entries from other services
decoded or skipped, and which readers an event is for."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from ticker.domain.events import EVERYTHING, Filter, decode
from ticker.domain.frames import frame, reset_frame, retry_frame
from ticker.domain.streamid import entry_key, valid_entry_id

NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)


def parse(raw: bytes) -> list[dict[str, list[str]]]:
    """Split bytes into events the way the SSE spec (and EventSource) does: lines end at
    CRLF, LF or CR; a blank line ends an event. Each event maps field -> values."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), text
    events: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] = {}
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        name, _, value = line.partition(":")
        current.setdefault(name, []).append(value.removeprefix(" "))
    assert not current, "bytes after the last event"
    return events


def only_event(raw: bytes) -> tuple[str, str, Any]:
    [event] = parse(raw)
    assert len(event["event"]) == len(event["id"]) == 1, event
    assert len(event["data"]) == 1, f"more than one data line: {event}"
    return event["event"][0], event["id"][0], json.loads(event["data"][0])


def item_fields(**changes: Any) -> dict[str, str]:
    item: dict[str, Any] = {
        "uri": "rotterdam-1",
        "channel": "en",
        "version": 1,
        "headline": "Rotterdam shooter arrested",
        "urgency": 2,
        "language": "en",
        "regions": ["europe"],
        "categories": ["crime"],
        "status": "usable",
        "created_at": "2026-11-26T17:50:00Z",
        "updated_at": "2026-11-26T17:50:00Z",
        "expires_at": "2026-11-26T23:50:00Z",
        "author": "wire-importer",
    }
    item.update(changes)
    return {"v": "1", "type": "item", "uri": item["uri"], "item": json.dumps(item)}


def remove_fields(reason: str = "kill", **changes: Any) -> dict[str, str]:
    fields = item_fields(status="canceled", **changes)
    fields.update(type="remove", reason=reason)
    return fields


# -- frame ---------------------------------------------------------------------------


def test_a_frame_is_one_event_with_one_data_line() -> None:
    raw = frame("item", "1732644000000-0", {"headline": "one\ntwo\r\nthree\u2028four"})
    assert raw.startswith(b"event: item\nid: 1732644000000-0\ndata: {")
    assert only_event(raw) == (
        "item",
        "1732644000000-0",
        {"headline": "one\ntwo\r\nthree\u2028four"},
    )


def test_a_frame_keeps_unicode_readable() -> None:
    raw = frame("item", "1-0", {"headline": "\u0627\u0644\u0634\u0631\u0637\u0629 \U0001f6a8"})
    assert "\u0627\u0644\u0634\u0631\u0637\u0629 \U0001f6a8".encode() in raw


@pytest.mark.parametrize(
    "name", ["message", "Item", "item ", "item\n", "item\ndata: x", "", "error"]
)
def test_frame_refuses_event_names_of_its_own_invention(name: str) -> None:
    with pytest.raises(ValueError, match="unknown event name"):
        frame(name, "1-0", {})


@pytest.mark.parametrize(
    "entry_id",
    [
        "abc",
        "1",
        "1-",
        "-1",
        "1-0 ",
        " 1-0",
        "1-0\n",
        "1-0\r",
        "1-0\r\n",
        "1-0\x00",
        "1-0\ndata: {}",
        "1-0\n\nevent: item",
        "1-0\u2028",
        "\uff11-0",
        "1" * 21 + "-0",
        "1-2-3",
    ],
)
def test_frame_refuses_ids_that_are_not_stream_ids(entry_id: str) -> None:
    assert not valid_entry_id(entry_id)
    with pytest.raises(ValueError, match="invalid event id"):
        frame("item", entry_id, {})


def test_reset_clears_the_last_event_id_and_retry_is_a_bare_field() -> None:
    assert reset_frame() == b"event: reset\nid: \ndata: {}\n\n"
    assert parse(reset_frame()) == [{"event": ["reset"], "id": [""], "data": ["{}"]}]
    assert retry_frame(3000) == b"retry: 3000\n\n"


def test_entry_ids_compare_as_numbers() -> None:
    assert entry_key("1732644000000-12") == (1732644000000, 12)
    assert entry_key("9-0") < entry_key("10-0") < entry_key("10-1")


# -- decode: entries, ours or another service's ---------------------------------------


def test_an_item_entry_becomes_an_item_event_with_its_entry_id() -> None:
    event = decode("1732644000000-3", item_fields(), "en", NOW)
    assert event is not None
    kind, entry_id, data = only_event(event.frame)
    assert (kind, entry_id) == ("item", "1732644000000-3")
    assert data["id"] == "1732644000000-3" and data["uri"] == "rotterdam-1"
    assert data["headline"] == "Rotterdam shooter arrested"
    assert event.key == (1732644000000, 3)
    assert (event.regions, event.categories, event.urgency) == (
        frozenset({"europe"}),
        frozenset({"crime"}),
        2,
    )


@pytest.mark.parametrize(
    "headline",
    [
        "Shooter\r\narrested",
        'Shooter\narrested\n\ndata: {"forged": true}\n\nevent: item',
        "Shooter\rarrested\r",
        "NUL\x00 ESC\x1b[31m NEL\x85 LS\u2028 PS\u2029 end",
        "\u200f\u0627\u0644\u0634\u0631\u0637\u0629\r\n\U0001f6a8",
    ],
)
def test_a_foreign_headline_with_line_breaks_is_one_event_with_the_literal_text(
    headline: str,
) -> None:
    # Another service wrote straight into the stream, without our validation.
    event = decode("5-0", item_fields(headline=headline), "en", NOW)
    assert event is not None
    kind, entry_id, data = only_event(event.frame)
    assert (kind, entry_id) == ("item", "5-0")
    assert data["headline"] == headline


def test_a_remove_entry_becomes_a_remove_event() -> None:
    event = decode("7-1", remove_fields("withhold", urgency=3), "en", NOW)
    assert event is not None
    assert only_event(event.frame) == (
        "remove",
        "7-1",
        {"uri": "rotterdam-1", "reason": "withhold"},
    )
    # A removal reaches every reader, whatever its filter (it may hold the item).
    for flt in (Filter(), Filter(max_urgency=1), Filter(regions=frozenset({"asia"}))):
        assert event.frame_for(flt) == event.frame


def test_a_remove_entry_with_a_line_break_in_its_uri_is_still_one_event() -> None:
    fields = remove_fields()
    fields["uri"] = "a1\n\nevent: item\ndata: {}"
    event = decode("7-2", fields, "en", NOW)
    assert event is not None
    assert only_event(event.frame)[2]["uri"] == fields["uri"]


@pytest.mark.parametrize(
    ("why", "changes"),
    [
        ("withheld", {"status": "withheld"}),
        ("killed", {"status": "canceled"}),
        ("expired", {"expires_at": "2026-11-26T18:00:00Z"}),
        ("under embargo", {"embargoed_until": "2026-11-26T18:00:01Z"}),
    ],
)
def test_an_item_readers_may_not_see_yet_gives_no_event(why: str, changes: dict[str, Any]) -> None:
    assert decode("1-0", item_fields(**changes), "en", NOW) is None
    released = item_fields(embargoed_until="2026-11-26T17:59:59Z")
    assert decode("1-0", released, "en", NOW) is not None


def deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


MALFORMED: list[tuple[str, str, dict[str, str]]] = [
    ("item not JSON", "1-0", {**item_fields(), "item": "{not json"}),
    ("item truncated", "1-0", {**item_fields(), "item": item_fields()["item"][:40]}),
    ("item a list", "1-0", {**item_fields(), "item": "[1, 2]"}),
    ("item a string", "1-0", {**item_fields(), "item": '"headline"'}),
    ("item missing", "1-0", {"type": "item", "uri": "a1"}),
    ("item empty", "1-0", {**item_fields(), "item": ""}),
    (
        "headline missing",
        "1-0",
        {
            **item_fields(),
            "item": json.dumps(
                {k: v for k, v in json.loads(item_fields()["item"]).items() if k != "headline"}
            ),
        },
    ),
    ("version zero", "1-0", item_fields(version=0)),
    ("urgency a word", "1-0", item_fields(urgency="high")),
    ("expires_at nonsense", "1-0", item_fields(expires_at="tomorrow")),
    ("regions not a list", "1-0", item_fields(regions=5)),
    ("status unknown", "1-0", item_fields(status="published")),
    ("lone surrogate", "1-0", item_fields(headline="a\ud800b")),
    ("item nested 10000 deep", "1-0", {**item_fields(), "item": deep(10_000)}),
    ("unknown type", "1-0", {**item_fields(), "type": "poll"}),
    ("no type", "1-0", {k: v for k, v in item_fields().items() if k != "type"}),
    ("remove reason unknown", "1-0", remove_fields("delete")),
    ("remove without reason", "1-0", {k: v for k, v in remove_fields().items() if k != "reason"}),
    ("remove without uri", "1-0", {**remove_fields(), "uri": ""}),
    ("entry id not an id", "not-an-id", item_fields()),
    ("entry id with newline", "1-0\nevent: item", item_fields()),
]


@pytest.mark.parametrize(
    ("entry_id", "fields"), [(m[1], m[2]) for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_a_malformed_entry_is_skipped_without_raising(
    entry_id: str, fields: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ticker.events"):
        assert decode(entry_id, fields, "en", NOW) is None


def test_a_skipped_entry_is_logged_on_one_line() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("ticker.events")
    logger.addHandler(handler)
    try:
        assert decode("1-0", {**item_fields(), "item": "{oops\nmore"}, "en", NOW) is None
    finally:
        logger.removeHandler(handler)
    [record] = records
    message = record.getMessage()
    assert "1-0" in message and "en" in message and "\n" not in message


def test_an_entry_of_a_future_type_is_silently_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ticker.events"):
        assert decode("1-0", {**item_fields(), "type": "poll"}, "en", NOW) is None
    assert caplog.records == []


# -- filters ---------------------------------------------------------------------------


def test_no_filter_matches_everything() -> None:
    assert EVERYTHING.everything and Filter().everything
    assert EVERYTHING.matches(frozenset(), frozenset(), 9)
    assert EVERYTHING.matches(frozenset({"asia"}), frozenset({"sport"}), 1)


def test_regions_match_any_of_them() -> None:
    flt = Filter(regions=frozenset({"europe", "africa"}))
    assert not flt.everything
    assert flt.matches(frozenset({"europe"}), frozenset(), 5)
    assert flt.matches(frozenset({"asia", "africa"}), frozenset(), 5)
    assert not flt.matches(frozenset({"asia"}), frozenset(), 5)
    assert flt.matches(frozenset(), frozenset(), 5)  # no region: global, for everyone


def test_an_item_with_no_categories_matches_every_category_filter() -> None:
    flt = Filter(regions=frozenset({"europe"}), categories=frozenset({"politics"}))
    assert flt.matches(frozenset(), frozenset(), 5)
    assert flt.matches(frozenset({"europe"}), frozenset(), 5)
    assert not flt.matches(frozenset({"asia"}), frozenset(), 5)
    assert not flt.matches(frozenset(), frozenset({"sport"}), 5)
    assert not Filter(max_urgency=2).matches(frozenset(), frozenset(), 3)


def test_categories_match_any_of_them_and_every_facet_must_match() -> None:
    flt = Filter(regions=frozenset({"europe"}), categories=frozenset({"crime", "politics"}))
    assert flt.matches(frozenset({"europe"}), frozenset({"politics", "sport"}), 5)
    assert not flt.matches(frozenset({"europe"}), frozenset({"sport"}), 5)
    assert not flt.matches(frozenset({"asia"}), frozenset({"crime"}), 5)


def test_max_urgency_is_inclusive() -> None:
    flt = Filter(max_urgency=2)
    assert not flt.everything
    assert flt.matches(frozenset(), frozenset(), 1)
    assert flt.matches(frozenset(), frozenset(), 2)
    assert not flt.matches(frozenset(), frozenset(), 3)


def test_an_event_is_wanted_by_the_readers_whose_filter_it_matches() -> None:
    event = decode("1-0", item_fields(regions=["europe"], urgency=2), "en", NOW)
    assert event is not None
    assert event.wanted(EVERYTHING)
    assert event.wanted(Filter(regions=frozenset({"europe"}), max_urgency=2))
    assert not event.wanted(Filter(regions=frozenset({"asia"})))
    assert not event.wanted(Filter(max_urgency=1))


@pytest.mark.parametrize(
    "flt",
    [
        Filter(max_urgency=1),
        Filter(regions=frozenset({"europe"})),
        Filter(categories=frozenset({"crime"})),
    ],
    ids=["flash-only", "europe", "crime"],
)
def test_a_kill_reaches_a_reader_even_after_a_correction_moved_the_item_out_of_its_filter(
    flt: Filter,
) -> None:
    # v1 was a flash for europe/crime: the filtered reader got it and shows it.
    v1 = decode("1-0", item_fields(urgency=1), "en", NOW)
    assert v1 is not None and v1.wanted(flt)
    # v2 downgrades it and moves it (the reader does not get v2, and still shows v1) ...
    moved = {"urgency": 4, "regions": ["asia"], "categories": ["sport"], "version": 2}
    v2 = decode("2-0", item_fields(**moved), "en", NOW)
    assert v2 is not None and not v2.wanted(flt)
    # ... so it gets a remove (reason "filter") instead of the new version ...
    assert only_event(v2.frame_for(flt)) == (
        "remove",
        "2-0",
        {"uri": "rotterdam-1", "reason": "filter"},
    )
    # ... and a later kill reaches it too: removals go to every reader.
    kill = decode("3-0", remove_fields("kill", **{**moved, "version": 3}), "en", NOW)
    assert kill is not None
    assert kill.frame_for(flt) == kill.frame
