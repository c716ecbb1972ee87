"""MidChains WebSocket login as a sans-I/O state machine: decoded messages and time in, actions out.

The document (001, "Authentication"): "Once client establishes the WebSocket connection, the client
has 30 seconds to complete the login process. Otherwise, the socket will be closed by MidChains."

1. send ``{"type":"challenge"}``; the answer's ``key`` is base64 DER SubjectPublicKeyInfo (the
   example loads as RSA-1024, e = 65537);
2. ``pass`` = base64(RSA PKCS#1 v1.5 encryption of the UTF-8 password under that key) (the
   document's Python sample: ``RSA.pkcs1_padding``; Java ``Cipher.getInstance("RSA")``);
3. send ``{"type":"login","userid":...,"pass":...}``; ``result`` OK, or a reason
   (``invalid user/password``). The venue then pushes every open ``order`` and every ``position``
   (no end marker: the adapter reconciles with ``querymultiorder`` and ``querypos``, whose answers
   say how many records there are).

The RSA step is the ``cryptography`` package's (OpenSSL), never our own: measured against the pure
Python ``rsa`` package, which is lighter (1.4 MB installed vs 18.3 MB, 7.8 ms import vs 20 ms) but
archived by its maintainer in April 2025; one encryption is 12 us here vs 165 us there (the README
section "MidChains WebSocket codec" has the figures).

The password is read only when the challenge's key has arrived (``password()``: the adapter passes
adapters.kit.credentials.read_secret for its env variable or file, so a rotated file is used at the
next login), encrypted, and dropped; it is in no action and no log line. The frame that carries
``pass`` comes with a loggable copy (``***``), and :attr:`LoginMachine.secrets` gives the values
the adapter's RedactingFilter must remember (the ciphertext too: a venue that reused its key would
accept it again).

Time is our deadline too: 30 s from the connection (``deadline_ns``), after which the machine gives
up itself (closing first) rather than wait for the venue to. Decisions (MID-10): ``need2FA`` is
ignored (no 2FA protocol is documented). A login answer that cannot be read (the document's own
example has a trailing comma) fails the login at once with the codec's reason, as does a
``{"result":"error parsing json"}``: no login on a guess. ``invalid user/password`` is not
retried (``retry=False``: a locked account would follow); a timeout or an unreadable answer is.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from adapters.kit.credentials import MissingSecret
from adapters.midchains.ws_codec import (
    Challenge,
    ChallengeAnswer,
    Login,
    LoginAnswer,
    RejectCodes,
    VenueError,
    WsCodecError,
    encode,
)
from engine.venue.rejects import Reject

__all__ = [
    "LOGIN_DEADLINE_NS",
    "AuthError",
    "Deliver",
    "LoggedIn",
    "LoginFailed",
    "LoginMachine",
    "LoginState",
    "PasswordTooLong",
    "SendText",
    "encrypt_password",
]

NS = 1_000_000_000
#: "the client has 30 seconds to complete the login process"
LOGIN_DEADLINE_NS = 30 * NS
#: smallest RSA key we encrypt a password under (the document's example is 1024 bits)
MIN_KEY_BITS = 1024


class AuthError(ValueError):
    """The challenge's key cannot be used, or the password cannot be encrypted under it."""


class PasswordTooLong(AuthError):
    """The password does not fit one PKCS#1 v1.5 block of the key: no retry will fix that."""


def encrypt_password(key_b64: str, password: str) -> str:
    """``pass`` for the login: base64(RSA PKCS#1 v1.5 of ``password`` in UTF-8) under the
    challenge's ``key`` (base64 DER SubjectPublicKeyInfo). Raises :class:`AuthError`."""
    try:
        der = base64.b64decode(key_b64.encode("ascii"), validate=True)
        key = load_der_public_key(der)
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise AuthError(f"challenge key is not a DER public key: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise AuthError(f"challenge key is a {type(key).__name__}, not RSA")
    if key.key_size < MIN_KEY_BITS:
        raise AuthError(f"challenge key has {key.key_size} bits (at least {MIN_KEY_BITS})")
    data = password.encode("utf-8")
    if len(data) > key.key_size // 8 - 11:  # PKCS#1 v1.5 holds at most k - 11 bytes
        raise PasswordTooLong(f"password of {len(data)} bytes is too long for a {key.key_size}-bit key")
    try:
        cipher = key.encrypt(data, padding.PKCS1v15())
    except ValueError as exc:  # a key that loads but OpenSSL will not use (an even modulus, a bad exponent)
        raise AuthError(f"challenge key cannot encrypt: {exc}") from None
    return base64.b64encode(cipher).decode("ascii")


class LoginState(Enum):
    IDLE = "idle"
    CHALLENGE_SENT = "challenge_sent"
    LOGIN_SENT = "login_sent"
    LOGGED_IN = "logged_in"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendText:
    """A text frame to send. ``loggable`` is the same with any credential as ``***``."""

    text: str
    loggable: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """A message that is not the login's: the adapter handles it as usual."""

    message: Any


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """Logged in; the open orders and positions the venue pushes next are the adapter's."""

    answer: LoginAnswer


@dataclass(frozen=True, slots=True)
class LoginFailed:
    """The login failed: the adapter closes the connection (``close``) and reports ``reason`` with
    the engine ``code``; it retries (with backoff) only when ``retry``."""

    reason: str
    code: int
    retry: bool
    close: bool = True


Action = SendText | Deliver | LoggedIn | LoginFailed


class LoginMachine:
    """One connection's login. ``connected(now)`` starts it; feed each decoded message to
    :meth:`receive`, each frame the codec refused to :meth:`undecodable`, and call :meth:`tick` at
    :meth:`next_deadline`. Times are UTC epoch (or monotonic) nanoseconds, as long as they agree."""

    __slots__ = ("userid", "password", "deadline_ns", "state", "expires_ns", "secrets", "rejects")

    def __init__(self, userid: str, password: Callable[[], str], deadline_ns: int = LOGIN_DEADLINE_NS,
                 rejects: RejectCodes | None = None) -> None:
        self.userid = userid
        self.password = password
        self.deadline_ns = deadline_ns
        self.state = LoginState.IDLE
        self.expires_ns: int | None = None
        #: values the adapter's RedactingFilter must remember (the encrypted ``pass`` once sent)
        self.secrets: tuple[str, ...] = ()
        self.rejects = rejects if rejects is not None else RejectCodes()

    def connected(self, now_ns: int) -> list[Action]:
        """The WebSocket is open: the 30 s start now; the challenge goes out."""
        self.state = LoginState.CHALLENGE_SENT
        self.expires_ns = now_ns + self.deadline_ns
        text = encode(Challenge())
        return [SendText(text, text)]

    def next_deadline(self) -> int | None:
        return self.expires_ns if self.state in (LoginState.CHALLENGE_SENT, LoginState.LOGIN_SENT) else None

    def tick(self, now_ns: int) -> list[Action]:
        if self.expires_ns is not None and now_ns >= self.expires_ns and self.state in (
                LoginState.CHALLENGE_SENT, LoginState.LOGIN_SENT):
            step = "challenge" if self.state is LoginState.CHALLENGE_SENT else "login"
            return self._fail(f"no {step} answer within {self.deadline_ns // NS} s of connecting",
                              Reject.BACKEND_CONNECTIVITY, retry=True)
        return []

    def undecodable(self, error: WsCodecError, now_ns: int) -> list[Action]:
        """A frame the codec refused. While an answer is awaited it is taken as that answer being
        unreadable (the document's login example has a trailing comma): the login fails now."""
        if self.state is LoginState.CHALLENGE_SENT or self.state is LoginState.LOGIN_SENT:
            step = "challenge" if self.state is LoginState.CHALLENGE_SENT else "login"
            return self._fail(f"{step} answer unreadable: {error.reason}", Reject.BACKEND_CONNECTIVITY, retry=True)
        return []

    def receive(self, message: Any, now_ns: int) -> list[Action]:
        actions = self.tick(now_ns)
        if actions:
            return actions
        if isinstance(message, VenueError) and self.state in (LoginState.CHALLENGE_SENT, LoginState.LOGIN_SENT):
            return self._fail(f"venue refused our request: {message.result}", self.rejects.code(message.result),
                              retry=True)
        if self.state is LoginState.CHALLENGE_SENT and isinstance(message, ChallengeAnswer):
            return self._challenged(message)
        if self.state is LoginState.LOGIN_SENT and isinstance(message, LoginAnswer):
            if message.ok:
                self.state = LoginState.LOGGED_IN
                return [LoggedIn(message)]
            code = self.rejects.code(message.result)
            return self._fail(f"login refused: {message.result}", code, retry=code != Reject.INVALID_TOKEN)
        return [Deliver(message)]

    def _challenged(self, answer: ChallengeAnswer) -> list[Action]:
        if not answer.ok or answer.key is None:
            return self._fail(f"challenge refused: {answer.result}", self.rejects.code(answer.result), retry=True)
        try:
            secret = self.password()
        except MissingSecret as exc:
            return self._fail(str(exc), Reject.INVALID_TOKEN, retry=False)
        try:
            cipher = encrypt_password(answer.key, secret)
        except PasswordTooLong as exc:
            return self._fail(str(exc), Reject.INVALID_TOKEN, retry=False)
        except AuthError as exc:  # the venue's key: a new connection brings a new one
            return self._fail(str(exc), Reject.EXCHANGE_REJECT, retry=True)
        finally:
            del secret
        login = Login(userid=self.userid, password=cipher)
        self.secrets = (cipher,)
        self.state = LoginState.LOGIN_SENT
        return [SendText(encode(login), encode(login, loggable=True))]

    def _fail(self, reason: str, code: int, *, retry: bool) -> list[Action]:
        self.state = LoginState.FAILED
        return [LoginFailed(reason, int(code), retry)]
