"""What ticker's protocols use of uvicorn's, checked on the uvicorn under test. CI runs
this module on the locked uvicorn and on 0.34, the floor in pyproject.toml; a uvicorn
that fails it is outside the supported range (docs/uvicorn-notes.md lists each use)."""

from __future__ import annotations

import inspect

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import Server, ServerState

pytestmark = pytest.mark.timeout(10)

# Methods ticker's HttpProtocol overrides and calls through ``super()``.
OVERRIDDEN = (
    "connection_made",
    "data_received",
    "on_headers_complete",
    "on_body",
    "on_message_complete",
    "on_response_complete",
    "connection_lost",
    "pause_writing",
    "resume_writing",
    "shutdown",
    "send_400_response",
    "_unsupported_upgrade_warning",
)


def _names(*functions: object) -> set[str]:
    names: set[str] = set()
    for function in functions:
        names |= set(function.__code__.co_names)  # type: ignore[attr-defined]
    return names


def test_the_protocol_methods_ticker_overrides_exist() -> None:
    for name in OVERRIDDEN:
        assert callable(getattr(HttpToolsProtocol, name, None)), name


def test_the_protocol_is_built_with_keyword_arguments_ticker_passes() -> None:
    params = inspect.signature(HttpToolsProtocol.__init__).parameters
    assert {"config", "server_state", "app_state", "_loop"} <= set(params)


def test_the_protocol_keeps_the_attributes_ticker_reads() -> None:
    names = _names(
        HttpToolsProtocol.__init__,
        HttpToolsProtocol.connection_made,
        HttpToolsProtocol.on_message_begin,
    )
    for attr in ("pipeline", "cycle", "scope", "transport", "parser", "url", "headers", "client"):
        assert attr in names, attr
    assert "root_path" in _names(HttpToolsProtocol.__init__)


def test_parse_errors_and_unsupported_upgrades_go_through_the_methods_ticker_overrides() -> None:
    names = _names(HttpToolsProtocol.data_received)
    assert "_unsupported_upgrade_warning" in names
    assert "send_400_response" in names


def test_the_request_cycle_keeps_the_fields_ticker_sets() -> None:
    names = _names(RequestResponseCycle.__init__)
    for attr in (
        "chunked_encoding",
        "expected_content_length",
        "disconnected",
        "keep_alive",
        "response_complete",
        "response_started",
        "more_body",
        "body",
        "message_event",
    ):
        assert attr in names, attr
    assert callable(getattr(RequestResponseCycle, "send", None))


def test_the_server_state_has_what_the_front_protocol_uses() -> None:
    state = ServerState()
    assert isinstance(state.connections, set)
    assert isinstance(state.default_headers, list)
    # The server calls shutdown() on every connection's protocol at exit.
    assert "shutdown" in _names(Server.shutdown) or "shutdown" in inspect.getsource(Server)
