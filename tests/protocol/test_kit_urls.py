"""No credential crosses a network in clear text (issue 20, section 3): every network adapter
refuses ``http://`` / ``ws://`` to a host that is not this machine, with one check
(adapters/kit/urls.py), and still talks plainly to a local sandbox."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.kit.urls import ClearTextRefused, refuse_clear_text
from adapters.optimus.options import OptimusOptions
from adapters.psx_feed.options import LiveFeedOptions
from adapters.pulse.options import PulseOptions


@pytest.mark.parametrize("url", ["http://127.0.0.1:8090/v1", "ws://localhost:8765/ws/api/v2", "ws://[::1]:1/x",
                                 "https://api.example.com/v1", "wss://feed.example.com"])
def test_encrypted_or_local_urls_pass(url: str) -> None:
    refuse_clear_text(url, "url", "the token")


@pytest.mark.parametrize("url", ["http://api.example.com/v1", "ws://10.0.0.5:8765/ws", "http://192.168.1.2"])
def test_clear_text_to_another_machine_is_refused_naming_the_fix(url: str) -> None:
    with pytest.raises(ClearTextRefused, match="unencrypted") as refused:
        refuse_clear_text(url, "base_url", "the password")
    secure = "https://" if url.startswith("http:") else "wss://"
    assert secure in str(refused.value) and "base_url" in str(refused.value)


def test_the_refusal_never_repeats_a_password_in_the_url() -> None:
    with pytest.raises(ClearTextRefused) as refused:
        refuse_clear_text("http://me:hunter2-secret@api.example.com/v1", "base_url", "the password")
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(("model", "fields"), [
    (OptimusOptions, {"base_url": "http://api.optimuscapital.com/v1"}),
    (PulseOptions, {"url": "ws://dev.pulsegateway.devucc.name/ws/api/v2", "client_id": "c"}),
    (LiveFeedOptions, {"url": "ws://csapis.com", "token_env": "X"}),
])
def test_every_network_adapter_refuses_clear_text_to_a_remote_host(model: type, fields: dict) -> None:
    with pytest.raises(ValidationError, match="unencrypted"):
        model(**fields)


@pytest.mark.parametrize(("model", "fields"), [
    (OptimusOptions, {"base_url": "http://127.0.0.1:8090/v1"}),
    (PulseOptions, {"url": "ws://127.0.0.1:8765/ws/api/v2", "client_id": "c"}),
    (LiveFeedOptions, {"url": "ws://127.0.0.1:8765", "token_env": "X"}),
])
def test_every_network_adapter_talks_plainly_to_a_local_sandbox(model: type, fields: dict) -> None:
    model(**fields)
