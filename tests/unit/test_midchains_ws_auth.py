"""The MidChains WebSocket login (adapters/midchains/ws_auth.py): challenge -> RSA PKCS#1 v1.5 of
the password -> login, within 30 s, as a state machine fed the document's own answers
(tests/fixtures/midchains/ws_examples.*) and a key pair made here, so the encryption is checked by
decrypting it."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from support.midchains_ws import example

from adapters.kit.credentials import read_secret
from adapters.midchains import ws_codec as ws
from adapters.midchains.ws_auth import (
    LOGIN_DEADLINE_NS,
    AuthError,
    Deliver,
    LoggedIn,
    LoginFailed,
    LoginMachine,
    LoginState,
    SendText,
    encrypt_password,
)
from engine.secrets import RedactingFilter

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
PASSWORD = "correct horse battery staple"
DOCUMENT_KEY = json.loads(example("challenge.response"))["key"]


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def key_text(private: rsa.RSAPrivateKey) -> str:
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def challenge_answer(key: str) -> ws.ChallengeAnswer:
    return ws.decode_message(json.dumps({"result": "OK", "type": "challenge", "key": key}))


def login_ok() -> ws.LoginAnswer:
    """The document's login answer without its trailing comma (the one change made here)."""
    text = example("login.response")
    assert text.count('"userid":"user@mail.com",\n') == 1
    return ws.decode_message(text.replace('"userid":"user@mail.com",\n', '"userid":"user@mail.com"\n'))


def started(password: str = PASSWORD) -> LoginMachine:
    machine = LoginMachine("user@mail.com", lambda: password)
    assert machine.connected(T0) == [SendText('{"type":"challenge"}', '{"type":"challenge"}')]
    return machine


# ---- the RSA step ------------------------------------------------------------------------------


def test_the_documents_key_is_rsa_1024_and_a_password_encrypts_under_it() -> None:
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key = load_der_public_key(base64.b64decode(DOCUMENT_KEY))
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 1024 and key.public_numbers().e == 65537
    cipher = encrypt_password(DOCUMENT_KEY, "PASSWORD")
    assert len(cipher) == 172 and len(base64.b64decode(cipher, validate=True)) == 128


def test_pass_is_pkcs1_v15_of_the_utf8_password(private_key: rsa.RSAPrivateKey) -> None:
    cipher = encrypt_password(key_text(private_key), "pässwörd")
    assert private_key.decrypt(base64.b64decode(cipher), padding.PKCS1v15()) == "pässwörd".encode()
    assert encrypt_password(key_text(private_key), "pässwörd") != cipher  # random padding: never the same twice


@pytest.mark.parametrize(("key", "match"), [
    ("not base64!", "not a DER public key"), (base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), "not a DER"),
])
def test_a_key_that_is_not_an_rsa_public_key_is_refused(key: str, match: str) -> None:
    with pytest.raises(AuthError, match=match):
        encrypt_password(key, PASSWORD)


#: the document's key with one character changed (its modulus now even): it loads as RSA 1024, but
#: OpenSSL refuses to encrypt under it. Found by benchmarks/fuzz.py midchains_ws (seed 1207), which
#: saw a ValueError escape the login; the venue's key must fail the login like any other bad key.
EVEN_MODULUS_KEY = (
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCvBXTe278Lwg2MoI7iGKolSYuF+sNFKrsZplxCN9x0kItU3KIf8+1q60ILLwLewCEf"
    "7foxzpWp32j9YYU9vNBghuJ7BHcDYTffTRcv+QdNno491j701Hq7DIw13AGCQQTRcnfclvblnytIEWoQsiUvPJcdiWgqJIX3IQGA47a+"
    "ugIDAQAB"
)


def test_a_key_that_loads_but_cannot_encrypt_is_refused() -> None:
    with pytest.raises(AuthError, match="cannot encrypt"):
        encrypt_password(EVEN_MODULUS_KEY, PASSWORD)
    (failed,) = started().receive(ws.ChallengeAnswer(result="OK", key=EVEN_MODULUS_KEY), T0 + NS)
    assert isinstance(failed, LoginFailed) and failed.retry and failed.code == 9002


def test_a_password_longer_than_one_block_is_refused(private_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(AuthError, match="118 bytes is too long for a 1024-bit key"):
        encrypt_password(key_text(private_key), "x" * 118)


# ---- the state machine ---------------------------------------------------------------------------


def test_challenge_then_login_then_logged_in(private_key: rsa.RSAPrivateKey) -> None:
    machine = started()
    (send,) = machine.receive(challenge_answer(key_text(private_key)), T0 + NS)
    assert isinstance(send, SendText) and machine.state is LoginState.LOGIN_SENT
    sent = json.loads(send.text)
    assert (sent["type"], sent["userid"]) == ("login", "user@mail.com")
    assert private_key.decrypt(base64.b64decode(sent["pass"]), padding.PKCS1v15()) == PASSWORD.encode()
    assert json.loads(send.loggable)["pass"] == "***" and sent["pass"] not in send.loggable
    assert machine.secrets == (sent["pass"],)
    (done,) = machine.receive(login_ok(), T0 + 2 * NS)
    assert isinstance(done, LoggedIn) and done.answer.firm == "MIDC" and machine.state is LoginState.LOGGED_IN
    assert machine.next_deadline() is None
    push = ws.decode_message(example("login_open_order.push"))
    assert machine.receive(push, T0 + 3 * NS) == [Deliver(push)]  # the open orders are the adapter's


def test_the_documents_challenge_answer_is_used_as_is() -> None:
    machine = started()
    (send,) = machine.receive(ws.decode_message(example("challenge.response")), T0 + NS)
    assert len(json.loads(send.text)["pass"]) == 172


def test_invalid_user_password_fails_with_1001_and_no_retry(private_key: rsa.RSAPrivateKey) -> None:
    machine = started()
    machine.receive(challenge_answer(key_text(private_key)), T0 + NS)
    (failed,) = machine.receive(ws.decode_message(example("login_refused.response")), T0 + 2 * NS)
    assert failed == LoginFailed("login refused: invalid user/password", 1001, retry=False)
    assert machine.state is LoginState.FAILED


def test_the_documents_login_answer_with_its_trailing_comma_fails_the_login_at_once(
        private_key: rsa.RSAPrivateKey) -> None:
    """The adapter feeds the frame the codec refused: no waiting 30 s, no login on a guess."""
    machine = started()
    machine.receive(challenge_answer(key_text(private_key)), T0 + NS)
    with pytest.raises(ws.WsCodecError) as caught:
        ws.decode_message(example("login.response"))
    (failed,) = machine.undecodable(caught.value, T0 + 2 * NS)
    assert isinstance(failed, LoginFailed) and failed.retry and failed.code == 9001
    assert failed.reason.startswith("login answer unreadable: not JSON") and "(a trailing comma)" in failed.reason


def test_error_parsing_json_during_login_fails_it() -> None:
    machine = started()
    (failed,) = machine.receive(ws.VenueError(result="error parsing json"), T0 + NS)
    assert isinstance(failed, LoginFailed) and failed.code == 7005 and failed.retry


@pytest.mark.parametrize("answered", [False, True])
def test_no_login_within_30_s_of_connecting_fails(private_key: rsa.RSAPrivateKey, answered: bool) -> None:
    machine = started()
    if answered:
        machine.receive(challenge_answer(key_text(private_key)), T0 + 29 * NS)
    assert machine.next_deadline() == T0 + LOGIN_DEADLINE_NS
    assert machine.tick(T0 + LOGIN_DEADLINE_NS - 1) == []
    (failed,) = machine.tick(T0 + LOGIN_DEADLINE_NS)
    step = "login" if answered else "challenge"
    assert failed == LoginFailed(f"no {step} answer within 30 s of connecting", 9001, retry=True)
    late = machine.receive(login_ok(), T0 + 31 * NS)
    assert late == [Deliver(late[0].message)] and machine.state is LoginState.FAILED  # too late to count


def test_the_password_comes_from_the_environment_at_challenge_time(
        private_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = LoginMachine("user@mail.com", lambda: read_secret("MIDCHAINS_TEST_PASSWORD", None, "midchains password"))
    machine.connected(T0)
    monkeypatch.delenv("MIDCHAINS_TEST_PASSWORD", raising=False)
    (failed,) = machine.receive(challenge_answer(key_text(private_key)), T0 + NS)
    assert failed == LoginFailed(
        "midchains password: environment variable MIDCHAINS_TEST_PASSWORD is not set", 1001, retry=False)
    monkeypatch.setenv("MIDCHAINS_TEST_PASSWORD", PASSWORD)
    machine.connected(T0)
    (send,) = machine.receive(challenge_answer(key_text(private_key)), T0 + NS)
    assert private_key.decrypt(base64.b64decode(json.loads(send.text)["pass"]), padding.PKCS1v15()) == b"correct " \
        b"horse battery staple"


def test_the_password_from_a_file(private_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    secret_file = tmp_path / "midchains.pass"
    secret_file.write_text(PASSWORD + "\n", encoding="utf-8")
    machine = LoginMachine("u", lambda: read_secret(None, secret_file, "midchains password"))
    machine.connected(T0)
    (send,) = machine.receive(challenge_answer(key_text(private_key)), T0 + NS)
    assert private_key.decrypt(base64.b64decode(json.loads(send.text)["pass"]), padding.PKCS1v15()) == \
        PASSWORD.encode()


def test_neither_the_password_nor_pass_reaches_a_log_line(private_key: rsa.RSAPrivateKey,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The adapter logs frames through a RedactingFilter keyed on ws_codec.CREDENTIAL_KEYS, and
    remembers the machine's secrets: a frame logged whole (a debug line, an error) shows neither."""
    machine = started()
    (send,) = machine.receive(challenge_answer(key_text(private_key)), T0 + NS)
    logger = logging.getLogger("test.midchains.ws")
    scrub = RedactingFilter(keys=ws.CREDENTIAL_KEYS)
    scrub.remember(PASSWORD, *machine.secrets)
    logger.addFilter(scrub)
    try:
        with caplog.at_level(logging.DEBUG, logger="test.midchains.ws"):
            logger.debug("sent %s", send.text)
            logger.error("login failed for %r with %s", PASSWORD, machine.secrets[0])
    finally:
        logger.removeFilter(scrub)
    text = caplog.text
    assert PASSWORD not in text and machine.secrets[0] not in text and '"pass":"***"' in text
    assert PASSWORD not in repr(machine.__class__) and all(PASSWORD not in repr(a) for a in [send])


def test_a_bad_key_from_the_venue_fails_with_a_retry() -> None:
    machine = started()
    bad = ws.ChallengeAnswer(result="OK", key=base64.b64encode(b"\x30\x03\x02\x01\x01").decode())
    (failed,) = machine.receive(bad, T0 + NS)
    assert isinstance(failed, LoginFailed) and failed.retry and failed.code == 9002
