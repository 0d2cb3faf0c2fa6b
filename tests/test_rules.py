"""The one function that decides what a stream request is (``ticker.http.rules``), as plain
unit tests: no server, no Redis. Every door calls it; tests/test_front_differential.py
checks that the doors then answer alike."""

from __future__ import annotations

import pytest

from ticker.domain.errors import TickerError
from ticker.domain.events import EVERYTHING, Filter
from ticker.http.rules import (
    RAW_SLACK,
    DeskStreamRequest,
    Head,
    HeadCount,
    Rules,
    StreamRequest,
    Verdict,
    head_part,
    head_size,
    judge,
    stream_channel,
)
from ticker.settings import Settings

pytestmark = pytest.mark.timeout(10)

RULES = Rules(frozenset({"en", "ar"}), 1024)
HOST = [(b"host", b"x")]


def verdict(
    target: bytes = b"/channels/en/events",
    headers: list[tuple[bytes, bytes]] | None = None,
    method: bytes = b"GET",
) -> Verdict:
    head = Head.of_target(method, target, HOST + (headers or []))
    assert head is not None
    return judge(head, RULES)


def refusal(*args: object, **kwargs: object) -> tuple[int, str]:
    result = verdict(*args, **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, TickerError), result
    return result.status_code, result.code


def test_a_plain_stream_request_is_the_whole_channel_from_now() -> None:
    assert verdict() == StreamRequest("en", EVERYTHING, None, None, None)


@pytest.mark.parametrize(
    "target",
    [b"/channels/en/items", b"/channels/en/events/", b"/channels//events", b"/channels/a/b/events"],
)
def test_other_paths_are_not_stream_requests(target: bytes) -> None:
    assert verdict(target) is None


def test_a_percent_encoded_path_is_matched_as_routes_match_it() -> None:
    result = verdict(b"/channels/%65n/events")
    assert isinstance(result, StreamRequest) and result.channel == "en"
    assert stream_channel("/channels/en%2Fx/events") == "en%2Fx"


def test_an_absolute_form_target_is_judged_by_its_path() -> None:
    result = verdict(b"http://example.org/channels/ar/events?region=gaza")
    assert isinstance(result, StreamRequest)
    assert result.channel == "ar" and result.flt.regions == frozenset({"gaza"})


def test_refusals_come_in_the_documented_order() -> None:
    big = [(b"x-pad", b"v" * 2000)]
    # Too large beats an unknown channel, which beats the method, then the body, then the filter.
    assert refusal(b"/channels/xx/events", big, b"HEAD") == (431, "headers_too_large")
    assert refusal(b"/channels/xx/events", method=b"HEAD") == (404, "not_found")
    assert refusal(b"/channels/en/events?region=BAD", method=b"POST") == (405, "method_not_allowed")
    body = [(b"content-length", b"5")]
    assert refusal(b"/channels/en/events?region=BAD", body) == (400, "bad_body")
    assert refusal(b"/channels/en/events?region=BAD") == (422, "invalid_request")


@pytest.mark.parametrize(
    "headers",
    [[(b"transfer-encoding", b"chunked")], [(b"content-length", b"1")], [(b"content-length", b"")]],
)
def test_a_body_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    if headers == [(b"content-length", b"")]:
        # An empty length announces no body: the parser refuses the head, not the rules.
        assert isinstance(verdict(headers=headers), StreamRequest)
        return
    assert refusal(headers=headers) == (400, "bad_body")


def test_a_zero_length_written_any_way_is_no_body() -> None:
    assert isinstance(verdict(headers=[(b"content-length", b"00")]), StreamRequest)


@pytest.mark.parametrize(
    "query",
    [b"max_urgency=", b"max_urgency=0", b"max_urgency=10", b"max_urgency=%C2%B2", b"region=A"],
)
def test_bad_filters_are_a_422_naming_the_parameter(query: bytes) -> None:
    result = verdict(b"/channels/en/events?" + query)
    assert isinstance(result, TickerError) and result.status_code == 422
    assert result.details and result.details[0]["field"] == query.split(b"=")[0].decode()


def test_the_first_of_each_duplicate_wins() -> None:
    result = verdict(
        b"/channels/en/events?max_urgency=2&max_urgency=9&last_event_id=5-0&last_event_id=6-0",
        [
            (b"origin", b"https://a.example"),
            (b"origin", b"https://evil.example"),
            (b"x-request-id", b"first-1"),
            (b"x-request-id", b"second-2"),
        ],
    )
    assert isinstance(result, StreamRequest)
    assert result.flt.max_urgency == 2
    assert result.last_event_id == "5-0"
    assert result.origin == "https://a.example"
    assert result.request_id == "first-1"
    headers = [(b"last-event-id", b"1-0"), (b"last-event-id", b"2-0")]
    assert verdict(headers=headers) == StreamRequest("en", EVERYTHING, "1-0", None, None)


def test_the_last_event_id_header_wins_over_the_query_and_empty_means_none() -> None:
    target = b"/channels/en/events?last_event_id=9-0"
    result = verdict(target, [(b"last-event-id", b"3-0")])
    assert isinstance(result, StreamRequest) and result.last_event_id == "3-0"
    result = verdict(target, [(b"last-event-id", b"")])
    assert isinstance(result, StreamRequest) and result.last_event_id == "9-0"


def test_an_unsafe_request_id_is_not_kept() -> None:
    result = verdict(headers=[(b"x-request-id", b"bad id\x01")])
    assert isinstance(result, StreamRequest) and result.request_id is None


@pytest.mark.parametrize("value", [b"Bearer tk_x", b"", b"Basic eDp5", b"bearer"])
def test_any_authorization_makes_it_the_desks_stream_which_no_protocol_serves(
    value: bytes,
) -> None:
    """Rule 7: a token's stream goes to the app, which checks the token (never quietly
    served the public view); it is judged by rules 1-6 first, and never counted."""
    result = verdict(b"/channels/en/events?region=europe", [(b"authorization", value)])
    assert isinstance(result, DeskStreamRequest) and not isinstance(result, StreamRequest)
    europe = Filter(regions=frozenset({"europe"}))
    assert result.stream == StreamRequest("en", europe, None, None, None, False)
    assert refusal(b"/channels/en/events?reach=no", [(b"authorization", value)]) == (
        422,
        "invalid_request",
    )
    assert refusal(b"/channels/xx/events", [(b"authorization", value)]) == (404, "not_found")


def test_reach_off_is_a_reader_that_is_not_counted_and_anything_else_is_a_422() -> None:
    result = verdict(b"/channels/en/events?reach=off")
    assert isinstance(result, StreamRequest) and not result.counted
    result = verdict(b"/channels/en/events?reach=on")
    assert isinstance(result, StreamRequest) and result.counted
    assert refusal(b"/channels/en/events?reach=maybe") == (422, "invalid_request")


def test_region_and_category_take_every_value() -> None:
    result = verdict(b"/channels/en/events?region=a,b&region=c&category=x")
    assert isinstance(result, StreamRequest)
    assert result.flt.regions == frozenset("abc") and result.flt.categories == frozenset("x")


def test_head_size_counts_each_header_as_a_line() -> None:
    headers = [(b"host", b"x"), (b"a", b"bc")]
    assert head_size(10, headers) == 10 + len(b"host: x\r\n") + len(b"a: bc\r\n")


def test_many_small_headers_count_as_much_as_they_take_on_the_wire() -> None:
    # 16,000 headers of "X:" are 64 KB sent: a 431, however small each value.
    assert refusal(headers=[(b"x", b"")] * 16_000) == (431, "headers_too_large")
    fits = RULES.max_header_bytes - len(b"/channels/en/events") - len(b"host: x\r\n")
    assert isinstance(verdict(headers=[(b"x", b"")] * (fits // 5)), StreamRequest)
    assert refusal(headers=[(b"x", b"")] * (fits // 5 + 1)) == (431, "headers_too_large")


def test_head_part_stops_at_the_blank_line() -> None:
    assert head_part(b"GET / HTTP/1.1\r\n\r\nGET /x", 0) == len(b"GET / HTTP/1.1\r\n\r\n")
    assert head_part(b"GET / HTTP/1.1\r\nHost: x", 0) == len(b"GET / HTTP/1.1\r\nHost: x")
    # The blank line split across two reads is still found.
    assert head_part(b"GET / HTTP/1.1\r\n\r\n", len(b"GET / HTTP/1.1\r\n\r")) == 18


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_head_count_sees_the_same_head_however_it_is_split(step: int) -> None:
    data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"junk after the head" * 10
    count = HeadCount(10_000)
    for at in range(0, len(data), step):
        assert count.add(data[at : at + step])
    assert count.seen == len(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_head_count_refuses_past_its_limit() -> None:
    count = HeadCount(RULES.raw_head_limit)
    assert RULES.raw_head_limit == RULES.max_header_bytes + RAW_SLACK
    assert count.add(b"GET / HTTP/1.1\r\nX: " + b"a" * 1000)
    assert not count.add(b"a" * RULES.raw_head_limit)


def test_the_default_deadlines_are_the_documented_ones() -> None:
    settings = Settings(redis_url=None)
    assert settings.head_timeout_s == 10.0
    # Both doors answer a stream that cannot open with a 503 within 10 s.
    assert settings.open_timeout_s <= 10.0
