"""The duplicate rule (dupes.py): what counts as the same headline, as a pure function,
then the rule through the HTTP API against a real Redis and a real uvicorn."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import make_token
from tests.redis_data import keys_holding, rdb, stream_len
from ticker.newsroom.dupes import digest, normal_headline
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio

HEADLINE = "Rotterdam shooter arrested"


# -- the same headline --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Rotterdam shooter arrested", "rotterdam  shooter arrested."),
        ("Rotterdam shooter arrested", "ROTTERDAM SHOOTER ARRESTED!"),
        ("Rotterdam shooter arrested", "\tRotterdam shooter\u00a0arrested "),
        ("Rotterdam shooter arrested", "Rotterdam: shooter arrested"),
        ("U.S. troops leave", "US troops leave"),
        ("Minister: 'we don't know'", "Minister “we don’t know”"),
        ("Al-Assad speaks", "al Assad speaks"),
        ("Score 1-0", "Score 1–0"),
        ("Ａｒｒｅｓｔｅｄ ﬁnally", "Arrested finally"),  # NFKC: full-width, ligature
        ("Straße gesperrt", "STRASSE GESPERRT"),  # casefold
        ("Rotterdam\u200b shooter\u200d arrested\ufeff", "Rotterdam shooter arrested"),
        # Spanish: ¿¡ are punctuation; a decomposed accent is the precomposed one.
        ("¡Última hora! ¿Dimite?", "Última hora, dimite"),
        ("Dimisión del ministro", "Dimisio\u0301n del ministro"),
        # Arabic: RTL marks, tatweel, harakat, Arabic-Indic digits, Arabic punctuation.
        ("\u200fمقتل ٣ أشخاص في روتردام", "مقتل 3 أشخاص في روتردام"),
        ("اعتقال مطـــلق النار", "اعتقال مطلق النار"),
        ("اعتقالُ مُطْلِقِ النّارِ", "اعتقال مطلق النار"),
        ("هل انتهت الأزمة؟ الحكومة، تستقيل", "هل انتهت الأزمة الحكومة تستقيل"),
    ],
)
def test_the_same_flash_typed_two_ways_is_the_same_headline(one: str, other: str) -> None:
    assert normal_headline(one) == normal_headline(other)
    assert digest(normal_headline(one)) == digest(normal_headline(other))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Death toll rises to three", "Death toll rises to four"),
        ("Death toll rises to 3", "Death toll rises to 4"),
        ("Death toll rises to 3", "Death toll rises to 33"),
        ("Rates cut to 3.5", "Rates cut to 35"),
        ("Fine of €5m", "Fine of $5m"),
        ("Rotterdam shooter arrested", "Rotterdam shooter not arrested"),
        ("Rotterdam shooter arrested", "Rotterdam shooters arrested"),
        # Spanish: an accent can change the word.
        ("El presidente dice sí", "El presidente dice si"),
        ("Un año de guerra", "Un ano de guerra"),
        # Arabic: letters are not merged (alef with hamza is not a bare alef).
        ("أمر بالإخلاء", "امر بالاخلاء"),
        ("مقتل ٣ أشخاص", "مقتل ٤ أشخاص"),
    ],
)
def test_other_words_or_digits_are_another_headline(one: str, other: str) -> None:
    assert normal_headline(one) != normal_headline(other)


def test_the_normal_form_is_lowercase_words_and_digits_one_space_apart() -> None:
    assert normal_headline("  U.S.  Death toll: 3,000 (so far).  ") == "us death toll 3,000 so far"
    assert normal_headline("\u202bمقتل ١٢ شخصا\u202c") == "مقتل 12 شخصا"
    assert normal_headline("!!! ... ?") == ""


@given(st.text(max_size=60))
def test_normalizing_twice_changes_nothing(text: str) -> None:
    once = normal_headline(text)
    assert normal_headline(once) == once
    assert once == once.strip() and "  " not in once


# -- the rule through the API -------------------------------------------------------------


async def post(api: httpx.AsyncClient, headline: str, channel: str = "en", **more: Any) -> Any:
    return await api.post(f"/channels/{channel}/items", json={"headline": headline, **more})


async def test_a_post_with_the_headline_of_a_recent_item_is_409_naming_it(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    first = (await post(api, HEADLINE, urgency=2)).json()
    other_editor = make_token(settings, "second-editor", ["en"])
    before = stream_len(settings)
    r = await api.post(
        "/channels/en/items",
        json={"headline": "rotterdam  shooter arrested."},
        headers={"Authorization": f"Bearer {other_editor}"},
    )
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "duplicate" and "force" in body["message"]
    assert "retry-after" not in r.headers  # not a race to retry: a question to answer
    other = body["item"]
    assert other["uri"] == first["uri"] and other["headline"] == HEADLINE
    assert other["author"] == "editor" and other["status"] == "usable"
    assert other["created_at"] == first["created_at"]
    assert stream_len(settings) == before  # nothing written


async def test_force_posts_it_and_the_next_one_is_told_of_the_newest(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    await post(api, HEADLINE)
    forced = await post(api, HEADLINE + "!", force=True)
    assert forced.status_code == 201, forced.text
    assert "force" not in forced.json()
    client = rdb(settings)
    try:
        stored = client.hget(f"{settings.key_prefix}:{{en}}:items", forced.json()["uri"])
    finally:
        client.close()
    assert b"force" not in stored  # not stored on the item
    again = await post(api, HEADLINE)
    assert again.status_code == 409
    assert again.json()["item"]["uri"] == forced.json()["uri"]


async def test_other_words_digits_or_editions_are_not_duplicates(api: httpx.AsyncClient) -> None:
    for headline in ("Death toll rises to three", "Death toll rises to four"):
        assert (await post(api, headline)).status_code == 201
    for headline in ("Death toll rises to 3", "Death toll rises to 4"):
        assert (await post(api, headline)).status_code == 201
    # The same words in another edition.
    assert (await post(api, HEADLINE)).status_code == 201
    assert (await post(api, HEADLINE, channel="es")).status_code == 201
    assert (await post(api, HEADLINE, channel="es")).status_code == 409


async def test_of_two_posts_at_the_same_instant_one_is_refused(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    for n in range(5):
        headline = f"Storm closes port number {n}"
        replies = await asyncio.gather(post(api, headline), post(api, headline.upper()))
        assert sorted(r.status_code for r in replies) == [201, 409], [r.text for r in replies]
        won, lost = sorted(replies, key=lambda r: r.status_code)
        assert lost.json()["item"]["uri"] == won.json()["uri"]
    listed = (await api.get("/channels/en/items")).json()["items"]
    assert len(listed) == 5


async def test_a_killed_or_reworded_item_does_not_count(api: httpx.AsyncClient) -> None:
    wrong = (await post(api, HEADLINE)).json()
    assert (await api.delete(f"/channels/en/items/{wrong['uri']}")).status_code == 200
    reposted = await post(api, HEADLINE)
    assert reposted.status_code == 201  # a wrong item, killed and posted again
    uri = reposted.json()["uri"]
    r = await api.patch(f"/channels/en/items/{uri}", json={"headline": "Rotterdam suspect held"})
    assert r.status_code == 200
    assert (await post(api, HEADLINE)).status_code == 201  # no item says that any more
    # Corrections are not checked: one may read as another item does.
    assert (await api.patch(f"/channels/en/items/{uri}", json={"headline": HEADLINE})).is_success


async def test_only_posts_within_the_window_count(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    window = Channel(name="en").duplicate_window
    assert window == timedelta(minutes=10)
    await post(api, HEADLINE)
    await post(api, "Another story")
    key = f"{settings.key_prefix}:{{en}}:dupes-at"
    ago_ms = time.time() * 1000 - window.total_seconds() * 1000
    client = rdb(settings)
    try:
        # As if posted a minute less, then a second more, than the window ago.
        client.zadd(key, {m: ago_ms + 60_000 for m in client.zrange(key, 0, -1)})
        assert (await post(api, HEADLINE)).status_code == 409
        client.zadd(key, {m: ago_ms - 1000 for m in client.zrange(key, 0, -1)})
        assert (await post(api, HEADLINE)).status_code == 201
        # The entries that aged out left the index as that post came; the post is noted.
        mine = digest(normal_headline(HEADLINE)).encode()
        assert client.zrange(key, 0, -1) == [mine]
        assert client.hkeys(f"{settings.key_prefix}:{{en}}:dupes") == [mine]
    finally:
        client.close()


async def test_an_idempotent_retry_gets_its_first_reply_not_409(api: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "flash-1"}
    body = {"headline": HEADLINE}
    first = await api.post("/channels/en/items", json=body, headers=key)
    for retry in (body, {**body, "force": True}):
        r = await api.post("/channels/en/items", json=retry, headers=key)
        assert r.status_code == 201 and r.headers["idempotent-replayed"] == "true"
        assert r.json()["uri"] == first.json()["uri"]
    another = await api.post("/channels/en/items", json=body, headers={"Idempotency-Key": "f2"})
    assert another.status_code == 409


async def test_force_must_be_true_or_false(api: httpx.AsyncClient, settings: Settings) -> None:
    bad: tuple[Any, ...] = ("true", 1, 0, None, "yes", [], {})
    for force in bad:
        r = await post(api, HEADLINE, force=force)
        assert r.status_code == 422, (force, r.text)
        assert [d["field"] for d in r.json()["details"]] == ["force"]
    assert stream_len(settings) == 0


@pytest.mark.parametrize(
    "settings_overrides",
    [{"channels": [Channel(name="en", duplicate_window=None), Channel(name="es")]}],
)
async def test_a_channel_without_a_window_takes_every_post(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    for channel, second in (("en", 201), ("es", 409)):
        assert (await post(api, HEADLINE, channel=channel)).status_code == 201
        assert (await post(api, HEADLINE, channel=channel)).status_code == second


async def test_a_purge_takes_the_items_digest_out_of_redis(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    item = (await post(api, HEADLINE)).json()
    kept = (await post(api, "Another story")).json()
    r = await api.post(
        f"/channels/en/items/{item['uri']}/purge",
        json={"reason": "court order"},
        headers={"Authorization": f"Bearer {chief}"},
    )
    assert r.status_code == 200, r.text
    assert keys_holding(settings, digest(normal_headline(HEADLINE))) == []
    client = rdb(settings)
    try:
        assert client.hvals(f"{settings.key_prefix}:{{en}}:dupes") == [kept["uri"].encode()]
    finally:
        client.close()
    assert (await post(api, HEADLINE)).status_code == 201
