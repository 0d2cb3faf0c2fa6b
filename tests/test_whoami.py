"""GET /whoami: what a token is (the web desk shows it), never the token itself."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import TickerProcess, make_token
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module


def test_whoami_names_the_token_and_never_its_secret(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    token = make_token(settings, "night-chief", ["en", "ar"], "chief")
    r = httpx.get(
        f"{ticker_server.url}/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert r.status_code == 200
    assert r.json() == {"name": "night-chief", "role": "chief", "channels": ["ar", "en"]}
    assert token not in r.text and "sha" not in r.text
    assert r.headers["cache-control"] == "private, no-store"
    assert "Authorization" in r.headers["vary"]
    for headers in ({}, {"Authorization": "Bearer tk_wrong"}, {"Authorization": "Basic x"}):
        refused_reply = httpx.get(f"{ticker_server.url}/whoami", headers=headers, timeout=10)
        assert refused_reply.status_code == 401
        assert refused_reply.json()["error"] == "unauthorized"
