"""One credential filter for every log: the engine's handlers, the Pulse loggers and the PSX Live
Feed's wire loggers all use ``engine.secrets.RedactingFilter`` (exported to adapters by the port as
``engine.venue.RedactingFilter``), and no adapter has a logging filter of its own."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from support import REPO
from websockets.frames import Frame, Opcode

import engine.venue
from adapters.psx_feed import adapter as psx_feed_adapter
from adapters.psx_feed import sandbox as psx_feed_sandbox
from adapters.pulse import wirelog
from engine.cli import setup_logging
from engine.secrets import MAX_REMEMBERED, RedactingFilter, Redactor

CONFIG_SECRET = "cfg-secret-9f8e7d"
CLIENT_SECRET = "cs-0123456789abcdef"
FEED_TOKEN = "feed-token-55aa66bb"


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("test", logging.DEBUG, __file__, 1, message, args or None, None)


def scrubbed(flt: logging.Filter, message: str, *args: object) -> str:
    rec = record(message, *args)
    assert flt.filter(rec)
    return rec.getMessage()


def filters_of(name: str) -> list[RedactingFilter]:
    return [f for f in logging.getLogger(name).filters if isinstance(f, RedactingFilter)]


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """setup_logging replaces the root handlers: put the test run's back."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved
    root.setLevel(level)


def test_the_port_exports_the_engine_filter() -> None:
    assert engine.venue.RedactingFilter is RedactingFilter


def test_the_same_filter_serves_the_engine_pulse_and_the_psx_feed(root_handlers: None) -> None:
    setup_logging("INFO", "human", Redactor([CONFIG_SECRET]))
    engine_filter = next(f for h in logging.getLogger().handlers for f in h.filters if isinstance(f, RedactingFilter))
    assert type(engine_filter) is RedactingFilter
    assert "***" in scrubbed(engine_filter, "login with %s", CONFIG_SECRET)

    for name in ("engine.pulse", "engine.pulse.wire", "engine.pulse.sandbox", "engine.pulse.sandbox.wire"):
        assert filters_of(name) == [wirelog.REDACT]
    assert type(wirelog.REDACT) is RedactingFilter
    text = scrubbed(wirelog.REDACT, '> TEXT %s', '{"params":{"grant_type":"client_credentials","client_secret":"'
                    + CLIENT_SECRET + '"}}')
    assert CLIENT_SECRET not in text and '"client_secret":"***"' in text

    for name in ("engine.psx_feed.wire", "engine.psx_feed.sandbox.wire"):
        assert filters_of(name) == [psx_feed_adapter.REDACT]
    assert psx_feed_sandbox.wire_log.name == "engine.psx_feed.sandbox.wire"
    assert type(psx_feed_adapter.REDACT) is RedactingFilter
    text = scrubbed(psx_feed_adapter.REDACT, "> GET /2.0/market/feed/l2?token=%s HTTP/1.1\nAuthorization: Bearer %s",
                    FEED_TOKEN, FEED_TOKEN)
    assert FEED_TOKEN not in text
    assert "?token=*** HTTP/1.1" in text and "Authorization: Bearer ***" in text


def test_no_adapter_defines_a_logging_filter_of_its_own() -> None:
    own = [str(path.relative_to(REPO)) for path in (REPO / "adapters").rglob("*.py")
           if "(logging.Filter)" in path.read_text(encoding="utf-8")]
    assert own == []


def test_a_frame_payload_is_scrubbed_before_websockets_elides_it() -> None:
    """websockets logs ``> %s`` with the frame, rendered with its middle cut out: a secret cut in
    half would pass any pattern, so the payload is cleaned first and the frame renders itself."""
    flt = RedactingFilter(keys=("refresh_token",))
    payload = '{"jsonrpc":"2.0","id":1,"params":{"pad":"' + "x" * 200 + '","refresh_token":"' + CLIENT_SECRET + '"}}'
    text = scrubbed(flt, "> %s", Frame(Opcode.TEXT, payload.encode()))
    assert text.startswith("> TEXT ") and '"refresh_token":"***"}}' in text
    assert not any(CLIENT_SECRET[i:i + 6] in text for i in range(len(CLIENT_SECRET) - 5))


def test_a_remembered_value_is_scrubbed_as_written_and_inside_json() -> None:
    flt = RedactingFilter()
    odd = 'tok"en\\with-quote'
    assert "tok" in scrubbed(flt, "before: %s", odd)  # not known yet
    flt.remember(odd)
    assert scrubbed(flt, "raw %s", odd) == "raw ***"
    assert scrubbed(flt, 'json {"t": "tok\\"en\\\\with-quote"}') == 'json {"t": "***"}'


def test_only_the_latest_remembered_values_are_kept() -> None:
    flt = RedactingFilter(Redactor([CONFIG_SECRET]))
    flt.remember("first-token-0000")
    flt.remember(*(f"later-token-{i:05d}" for i in range(MAX_REMEMBERED)))
    text = scrubbed(flt, "first-token-0000 later-token-00007 %s", CONFIG_SECRET)
    assert text == "first-token-0000 *** ***"  # the config's secrets are never forgotten


def test_a_filter_with_nothing_to_scrub_leaves_the_record_alone() -> None:
    rec = record("value %s", 42)
    assert RedactingFilter().filter(rec) and RedactingFilter(Redactor([])).filter(rec)
    assert rec.args == (42,) and rec.msg == "value %s"


def test_a_traceback_is_scrubbed_too() -> None:
    flt = RedactingFilter(keys=("access_token",))
    try:
        raise RuntimeError(f"refused access_token={FEED_TOKEN}")
    except RuntimeError:
        rec = logging.LogRecord("test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert flt.filter(rec)
    assert rec.exc_text is not None and FEED_TOKEN not in rec.exc_text and "access_token=***" in rec.exc_text
