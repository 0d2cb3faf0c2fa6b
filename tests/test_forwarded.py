"""Who the client of a request is (``ticker.http.forwarded``), as plain unit tests: the
one function every door calls, and the setting that feeds it. No server, no Redis;
tests/test_front_forwarded.py drives the doors at the byte, and a real server checks the
reader cap and the access line."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ticker.cli.console import settings_error
from ticker.domain.proxies import NOBODY, SEEN_MAX, Proxies
from ticker.http.forwarded import MAX_HOPS, client_address, forward
from ticker.http.rules import Rules
from ticker.settings import Settings

pytestmark = pytest.mark.timeout(10)

PROXY = ("10.0.0.5", 41000)  # the peer: a proxy, when it is trusted
TRUSTED = Proxies.parse(["10.0.0.5", "10.1.0.0/16", "fd00::/8"])


def xff(*values: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"ticker"), *((b"x-forwarded-for", v.encode("latin-1")) for v in values)]


def client(*values: str, peer: tuple[str, int] | None = PROXY, proxies: Proxies = TRUSTED) -> Any:
    return client_address(peer, xff(*values), proxies)


def test_with_no_trusted_proxy_the_peer_is_the_client_whatever_it_claims() -> None:
    assert not NOBODY
    assert client("203.0.113.7", proxies=NOBODY) == PROXY
    assert client("203.0.113.7", proxies=Proxies.parse([])) == PROXY


def test_a_trusted_proxy_names_the_client() -> None:
    assert client("203.0.113.7") == ("203.0.113.7", 0)
    assert client(" 203.0.113.7 ") == ("203.0.113.7", 0)


def test_without_the_header_a_trusted_peer_is_the_client() -> None:
    assert client() == PROXY
    assert client_address(PROXY, [(b"x-forwarded-host", b"203.0.113.7")], TRUSTED) == PROXY


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    stranger = ("198.51.100.9", 5000)
    assert client("203.0.113.7", peer=stranger) == stranger
    assert client("10.0.0.5", peer=stranger) == stranger  # claiming to be our proxy
    assert client("203.0.113.7", peer=None) is None  # no address at all (a unix socket)


def test_the_list_is_walked_from_the_right_past_trusted_hops() -> None:
    # The client spoofs a first entry; our two proxies append what they saw.
    assert client("1.2.3.4, 203.0.113.7, 10.1.7.7") == ("203.0.113.7", 0)
    assert client("1.2.3.4, 203.0.113.7", "10.1.7.7") == ("203.0.113.7", 0)
    # Every hop trusted: the leftmost is the client (uvicorn's rule).
    assert client("10.1.0.9, 10.1.7.7") == ("10.1.0.9", 0)


def test_several_headers_are_one_list_in_order() -> None:
    assert client("1.2.3.4", "203.0.113.7") == ("203.0.113.7", 0)
    assert client("203.0.113.7", "10.1.2.3") == ("203.0.113.7", 0)
    assert client("203.0.113.7,", "") == PROXY  # an empty last entry: nothing to vouch for


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("203.0.113.7:51234", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("[::ffff:203.0.113.7]:80", "203.0.113.7"),
    ],
)
def test_an_address_is_written_one_way_so_it_counts_once(written: str, meant: str) -> None:
    assert client(written) == (meant, 0)


@pytest.mark.parametrize(
    "garbage",
    [
        "unknown",
        "ticker.example.com",
        "",
        "   ",
        "203.0.113.7:port",
        "203.0.113.07",  # a leading zero: octal to some parsers
        "0x7f.1",
        "203.0.113.7.5",
        "[203.0.113.7]",  # brackets hold IPv6 only
        "[2001:db8::1",
        "[2001:db8::1]x",
        "fe80::1%eth0",  # a zone: another spelling of one client for each interface name
        "2001:db8::1:99999",
        "9" * 200,
        "\x00\xff",
        "_hidden",
    ],
)
def test_an_entry_that_is_no_address_ends_the_walk_at_the_hop_that_wrote_it(
    garbage: str,
) -> None:
    assert client(garbage) == PROXY
    # Behind two of our proxies, the nearer one wrote a trusted address: that is the last
    # address anyone vouched for.
    assert client(f"{garbage}, 10.1.2.3") == ("10.1.2.3", 0)
    # Garbage to the left of the client is never read.
    assert client(f"{garbage}, 203.0.113.7") == ("203.0.113.7", 0)


def test_only_the_last_hops_are_read() -> None:
    hops = [f"10.1.0.{n}" for n in range(1, MAX_HOPS + 6)]
    # The client is beyond MAX_HOPS trusted hops: the last trusted hop read stands in.
    assert client(", ".join(["203.0.113.7", *hops])) == (hops[-MAX_HOPS], 0)
    assert client(", ".join(["203.0.113.7", *hops[-(MAX_HOPS - 1) :]])) == ("203.0.113.7", 0)
    # A header padded with thousands of entries costs no more than MAX_HOPS of them.
    assert client(", ".join(["1.2.3.4"] * 5000 + ["203.0.113.7"])) == ("203.0.113.7", 0)


def test_star_trusts_every_peer_and_every_hop_so_the_leftmost_wins() -> None:
    everyone = Proxies.parse(["*"])
    stranger = ("198.51.100.9", 5000)
    assert client("1.2.3.4, 203.0.113.7", peer=stranger, proxies=everyone) == ("1.2.3.4", 0)
    assert client("203.0.113.7", peer=None, proxies=everyone) == ("203.0.113.7", 0)
    assert client("junk, 203.0.113.7", peer=stranger, proxies=everyone) == ("203.0.113.7", 0)


def test_ipv6_and_ipv4_mapped_peers_are_trusted_by_their_networks() -> None:
    assert client("203.0.113.7", peer=("fd00::17", 443)) == ("203.0.113.7", 0)
    assert client("203.0.113.7", peer=("::ffff:10.0.0.5", 443)) == ("203.0.113.7", 0)
    assert client("203.0.113.7", peer=("fe00::1", 443)) == ("fe00::1", 443)
    assert client("2001:db8::7, fd12::1") == ("2001:db8::7", 0)


def test_a_cidr_network_trusts_its_addresses_only() -> None:
    assert client("203.0.113.7", peer=("10.1.255.254", 1)) == ("203.0.113.7", 0)
    assert client("203.0.113.7", peer=("10.2.0.1", 1)) == ("10.2.0.1", 1)


def test_what_entries_said_is_remembered_within_a_bound() -> None:
    proxies = Proxies.parse(["10.0.0.5"])
    for n in range(SEEN_MAX + 10):  # a client sending a new address each time
        client_address(PROXY, xff(f"203.0.{n // 256}.{n % 256}"), proxies)
    assert len(proxies._seen) <= SEEN_MAX
    assert client_address(PROXY, xff("203.0.113.7"), proxies) == ("203.0.113.7", 0)


def test_an_asgi_scope_gets_the_client_in_place() -> None:
    scope: dict[str, Any] = {"client": list(PROXY), "headers": xff("203.0.113.7")}
    forward(scope, TRUSTED)
    assert scope["client"] == ("203.0.113.7", 0)
    untouched: dict[str, Any] = {"client": ("198.51.100.9", 1), "headers": xff("203.0.113.7")}
    forward(untouched, TRUSTED)
    assert untouched["client"] == ("198.51.100.9", 1)
    forward(none := {"headers": xff("203.0.113.7")}, TRUSTED)
    assert "client" not in none


# -- the setting ------------------------------------------------------------------------


def test_the_setting_takes_addresses_networks_and_star_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKER_FORWARDED_ALLOW_IPS", " 10.0.0.5, 10.1.0.0/16 ,fd00::/8,")
    settings = Settings()
    assert settings.forwarded_allow_ips == ("10.0.0.5", "10.1.0.0/16", "fd00::/8")
    assert Rules.of(settings).proxies == TRUSTED
    monkeypatch.setenv("TICKER_FORWARDED_ALLOW_IPS", "*")
    assert Rules.of(Settings()).proxies.everyone
    monkeypatch.delenv("TICKER_FORWARDED_ALLOW_IPS")
    assert not Rules.of(Settings()).proxies  # the default trusts nobody


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("proxy.internal", "'proxy.internal' is not an IP address or network"),
        ("10.0.0.5:80", "'10.0.0.5:80' is not an IP address or network"),
        ("10.0.0.1/8", "'10.0.0.1/8' has bits set past its prefix: did you mean 10.0.0.0/8?"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or network"),
        ("fe80::1%eth0", "'fe80::1%eth0' is not an IP address or network"),
        ("*, 10.0.0.5", "'*' trusts every address: give it alone"),
    ],
)
def test_a_bad_setting_is_refused_in_our_words(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("TICKER_FORWARDED_ALLOW_IPS", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    said = settings_error(caught.value)  # what `ticker serve` prints, and exits 1
    assert said.startswith(f"invalid settings: TICKER_FORWARDED_ALLOW_IPS: {message}"), said
