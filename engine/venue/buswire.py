"""The bus's wire: subjects and the encoding of market-data events between ``engine feed`` and the
``bus`` adapter.

Subjects (one NATS account; ``PREFIX`` is ``md`` unless configured):

- ``md.<venue>.<symbol>``: every normalised event of one symbol (book change, snapshot, trade,
  instrument status), each with the symbol's sequence number and the feed's epoch. JetStream
  stream ``MD_<VENUE>`` keeps a bounded window of ``md.<venue>.>`` for gap replay.
- ``mdhb.<venue>``: the feed's heartbeat (core NATS only): its epoch and what its own venue
  connection reports, so an engine tells "the feed is silent" from "the market is quiet".
- ``halt.<account>``: the kill switch broadcast (``engine halt``); the state is also kept in the
  key-value bucket ``HALT`` so an engine that starts after the broadcast starts halted.

Encoding: msgpack through msgspec, each event an array tagged by kind; prices and quantities as
decimal strings, so they arrive exactly as the venue sent them (a binary float would not; msgpack
has no decimal type). Measured in benchmarks/bench_bus.py against JSON with decimal strings:
smaller and faster to decode, see the README section "Many engines over NATS".
"""

from __future__ import annotations

import importlib.util
import logging
import re
import ssl
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
from pydantic import ValidationError, model_validator

from engine.model import BookUpdate, InstrumentStatus, Side, Trade
from engine.secrets import RedactingFilter
from engine.venue.contract import AdapterOptions
from engine.venue.credentials import MissingSecret, is_loopback, read_secret

log = logging.getLogger("engine.bus.nats")

PREFIX = "md"
HEARTBEAT_PREFIX = "mdhb"
HALT_PREFIX = "halt"
HALT_BUCKET = "HALT"

#: a subject token: NATS splits on dots and treats * and > as wildcards; whitespace ends a subject
_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+$")


class BadSubjectToken(ValueError):
    """A venue, symbol or account name that cannot be one NATS subject token."""


def token(kind: str, value: str) -> str:
    """``value`` as one subject token, refused by name when it would split or wildcard a subject."""
    if not _TOKEN.match(value):
        raise BadSubjectToken(f"{kind} {value!r} cannot be a NATS subject token (letters, digits, _ and - only)")
    return value


class NatsAuth(AdapterOptions):
    """How a bus client proves itself to NATS and checks the server, for all three clients (the
    ``bus`` adapter's options, ``engine feed``'s flags, ``engine halt`` through the engine config's
    bus options). A secret is only ever named here (an environment variable or a file), never
    given: the config, the command line and every log line stay free of it. At most one way in:

    - a token: ``token_env`` or ``token_file`` (nats-server ``--auth``, ``authorization.token``);
    - a user and password: ``user`` with ``password_env`` or ``password_file``;
    - a NATS ``.creds`` file: ``creds_file`` (the user JWT and nkey seed, one account per desk).

    TLS: ``tls_ca_file`` verifies the server against a private CA (default: the system's CAs),
    ``tls_cert_file`` + ``tls_key_file`` present a client certificate (nats-server ``verify``).
    A ``tls://`` URL, or any of these files, makes TLS a requirement, not a wish: see
    :func:`connect_nats`."""

    token_env: str | None = None
    token_file: Path | None = None
    user: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    creds_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> NatsAuth:
        if self.token_env and self.token_file:
            raise ValueError("give token_env or token_file, not both")
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        has_password = bool(self.password_env or self.password_file)
        if self.user and not has_password:
            raise ValueError("user needs password_env or password_file (the password itself never goes in config)")
        if has_password and not self.user:
            raise ValueError("password_env/password_file need user")
        ways = [name for name, given in (("token_env/token_file", self.token_env or self.token_file),
                                         ("user + password_env/password_file", self.user),
                                         ("creds_file", self.creds_file)) if given]
        if len(ways) > 1:
            raise ValueError(f"give one way to log in to NATS, not {' and '.join(ways)}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together (the client certificate and its key)")
        return self

    def credential(self) -> str:
        """What this client logs in with, by where it comes from (never the value): for errors."""
        if self.token_env or self.token_file:
            return f"the token from {self._source(self.token_env, self.token_file)}"
        if self.user:
            return f"user {self.user!r} with the password from {self._source(self.password_env, self.password_file)}"
        if self.creds_file:
            return f"the credentials file {self.creds_file}"
        return "a login without credentials (none configured)"

    @staticmethod
    def _source(env: str | None, file: Path | None) -> str:
        return f"file {file}" if file is not None else f"environment variable {env}"

    def has_credentials(self) -> bool:
        return bool(self.token_env or self.token_file or self.user or self.creds_file)

    def wants_tls(self, url: str) -> bool:
        """TLS is required: a ``tls://`` URL, or a CA or client certificate named."""
        return urlsplit(url).scheme == "tls" or any(
            f is not None for f in (self.tls_ca_file, self.tls_cert_file, self.tls_key_file))


class NatsConnection(NatsAuth):
    """A NATS server and how to log in to it (what ``engine halt`` reads of a ``bus`` venue's options)."""

    nats_url: str = "nats://127.0.0.1:4222"

    @model_validator(mode="after")
    def _url(self) -> NatsConnection:
        check_url(self.nats_url, self)
        return self


def nats_connection(**values: object) -> NatsConnection:
    """A :class:`NatsConnection` from flags; a problem is a ``ValueError`` whose text names the
    option and never echoes a value given (pydantic's own text quotes the input: a URL with a
    password in it would be printed)."""
    try:
        return NatsConnection.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise ValueError("; ".join(
            f"{'.'.join(map(str, e['loc'])) + ': ' if e['loc'] else ''}{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False))) from None


#: the one filter on every logger a bus client's secrets could reach (nats-py's included): the
#: tokens and passwords read at connect are remembered by value (defence in depth: no message
#: of ours carries one, and a URL is shown only through :func:`shown_url`)
REDACT = RedactingFilter()
for _name in ("engine.bus", "engine.bus.nats", "engine.feed", "nats.aio.client", "nats.js.kv"):
    if REDACT not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(REDACT)


def shown_url(url: str) -> str:
    """``url`` as any log line, status or error may show it: without a user or password part."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "<unreadable URL>"
    if "@" not in parts.netloc:
        return url
    netloc = (f"[{host}]" if host and ":" in host else host or "") + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str, auth: NatsAuth, option: str = "nats_url") -> None:
    """Refuse (``ValueError`` naming ``option``) a URL that would leak or expose a credential:

    - a user or password inside it (``nats://user:pass@host``): the URL is written in config files
      and shown in logs and status lines; the option to use instead is named;
    - credentials over plain ``nats://`` to another machine without TLS: refused, not warned, as
      every venue adapter refuses ``http://``/``ws://`` away from this machine
      (``adapters.kit.urls.refuse_clear_text``): a token sniffed once is a desk's market data and
      kill switch for anyone. ``nats://`` with ``tls_ca_file`` is TLS (required, see
      :func:`connect_nats`); ``nats://`` to this machine stays allowed (a local server, a test).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        raise ValueError(f"{option} {shown_url(url)!r} is not a URL") from None
    if parts.scheme not in ("nats", "tls"):
        raise ValueError(f"{option} {shown_url(url)!r}: must start with nats:// or tls://")
    if "@" in parts.netloc:
        raise ValueError(
            f"{option} {shown_url(url)!r} carries a user or password, which would be written in config and "
            "logs: give the token with token_env or token_file, or user with password_env or password_file, "
            "or a creds_file (engine feed: --nats-token-env, --nats-user, --nats-password-env, ...)")
    if parts.scheme == "nats" and auth.has_credentials() and not auth.wants_tls(url) and not is_loopback(host):
        raise ValueError(
            f"{option} {shown_url(url)!r}: plain nats:// would send {auth.credential()} unencrypted to another "
            "machine; use tls:// (with tls_ca_file for a private CA) - nats:// with credentials is allowed "
            "only to this machine")


class TlsNotStarted(ssl.SSLError):
    """The server did not start TLS although this client requires it: nothing secret was sent."""


class _CountingTls(ssl.SSLContext):
    """A client TLS context that counts the TLS sessions it starts. nats-py upgrades a connection
    to TLS only when the server's INFO asks for it, even for a ``tls://`` URL: a server (or a man
    in the middle) that does not ask would be handed the token in clear text. The credential is
    released only when a session started on this connection (:func:`_connect_options`)."""

    started = 0
    #: ``started`` when the last connection was seen in TLS (the first connect, each reconnect)
    checked = 0

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.started += 1
        return super().wrap_bio(*args, **kwargs)


def tls_context(auth: NatsAuth) -> _CountingTls:
    """The client's TLS context: the server verified (against ``tls_ca_file``, else the system's
    CAs) with its host name checked; a client certificate when one is named. A file that cannot be
    read is a ``ValueError`` naming its option."""
    context = _CountingTls(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and the host name
    try:
        if auth.tls_ca_file is not None:
            context.load_verify_locations(cafile=auth.tls_ca_file)
        else:
            context.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"tls_ca_file {auth.tls_ca_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if auth.tls_cert_file is not None and auth.tls_key_file is not None:
        try:
            context.load_cert_chain(auth.tls_cert_file, auth.tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"tls_cert_file {auth.tls_cert_file} / tls_key_file {auth.tls_key_file}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
    return context


def _connect_options(auth: NatsAuth, url: str, tls: _CountingTls | None) -> dict[str, Any]:
    """nats-py's keyword arguments for ``auth``. Secrets are read now (a missing one is a
    ``MissingSecret`` naming its variable or file) and again at each reconnect (a rotated file is
    picked up; if it is gone meanwhile, the last value read is kept). With TLS required, a secret
    is handed over only on a connection whose TLS session has started (:class:`_CountingTls`)."""
    options: dict[str, Any] = {}
    if tls is not None:
        options["tls"] = tls

    def guarded(env: str | None, file: Path | None, what: str) -> Callable[[], str]:
        last = read_secret(env, file, what)
        REDACT.remember(last)
        released = 0

        def value() -> str:
            nonlocal last, released
            if tls is not None:
                if tls.started <= released:
                    raise TlsNotStarted(f"the server at {shown_url(url)} did not start TLS: {what} not sent")
                released = tls.started
            try:
                last = read_secret(env, file, what)
                REDACT.remember(last)
            except MissingSecret as exc:
                log.warning("%s; keeping the one read before", exc)
            return last

        return value

    if auth.token_env or auth.token_file:
        options["token"] = guarded(auth.token_env, auth.token_file, "NATS token")
    elif auth.user:
        options["user"] = auth.user
        options["password"] = guarded(auth.password_env, auth.password_file, f"NATS password of {auth.user!r}")
    elif auth.creds_file is not None:
        # the seed never leaves this machine (the server sends a nonce, the client signs it), so a
        # creds file needs no release guard; nats-py reads the file at each connect
        if importlib.util.find_spec("nkeys") is None:
            raise ValueError("creds_file needs the nkeys package: pip install 'psx-strategy-engine[nats]'")
        try:
            text = auth.creds_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise MissingSecret(f"NATS creds_file: cannot read {auth.creds_file}: {exc.strerror or exc}") from None
        if "NATS USER JWT" not in text or "USER NKEY SEED" not in text:
            raise ValueError(f"creds_file {auth.creds_file} is not a NATS credentials file (a user JWT and "
                             "nkey seed, as nsc writes it)")
        REDACT.remember(*(line.strip() for line in text.splitlines() if line.startswith("SU")))  # the seed
        options["user_credentials"] = str(auth.creds_file)
    return options


def _refusal(exc: BaseException) -> bool:
    """A server's answer that retrying will not change: credentials refused, TLS failed or not
    offered. ``connect_nats`` stops at the first one instead of retrying until its timeout."""
    if isinstance(exc, ssl.SSLError):  # TLS failed, or (TlsNotStarted) was not started
        return True
    text = str(exc).lower()
    if text.startswith("nats: '"):  # the server's own -ERR line ('Authorization Violation', ...)
        return "authorization" in text or "authentication" in text
    # nats-py's words for TLS it cannot have; not any text naming "tls" (a host name may)
    return text.startswith("nats: secure connection") or text == "ws: cannot upgrade to tls"


_closing: set[Any] = set()  # the closes _tls_checked started (held, so none is collected mid-way)


def _tls_checked(nc: Any, tls: _CountingTls, name: str, shown: str, then: Any) -> Callable[[], Any]:
    """A reconnect callback that closes a connection made without TLS (a server, or something in
    between, that stopped asking for it): without credentials nothing guarded it, and the market
    data and kill switch on it would be open to tampering. Closed, the client stays down (the bus
    adapter reports ``disconnected``, the feed stops publishing), loudly, rather than trust it."""
    import asyncio

    async def reconnected() -> None:
        if tls.started <= tls.checked:
            log.error("nats %s at %s: reconnected without TLS, which a tls:// URL or tls_ca_file requires: "
                      "closing the connection", name, shown)
            closing = asyncio.ensure_future(nc.close())  # not awaited here: close waits for this callback
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)
            return
        tls.checked = tls.started
        if then is not None:
            await then()

    return reconnected


def _refusal_sentence(why: BaseException, shown: str, auth: NatsAuth) -> str:
    """One line naming the server and what it refused, by source, never by value."""
    if isinstance(why, TlsNotStarted):
        return (f"the NATS server at {shown} did not start TLS, which a tls:// URL or tls_ca_file requires: "
                f"{auth.credential()} not sent")
    if isinstance(why, ssl.SSLError):
        detail = ": ".join(str(part) for part in (getattr(why, "reason", None), getattr(why, "verify_message", None))
                           if part) or str(why)
        return (f"TLS with the NATS server at {shown} failed: {detail}"
                + ("" if auth.tls_ca_file is None else f" (tls_ca_file {auth.tls_ca_file})"))
    reason = str(why).removeprefix("nats: ").strip("'")
    return f"the NATS server at {shown} refused {auth.credential()}: {reason}"


async def connect_nats(url: str, name: str, timeout_s: float, auth: NatsAuth | None = None,
                       **callbacks: object) -> object:
    """A nats-py connection, logged in with ``auth``, that fails in ``timeout_s`` when the server is
    not there, and at once, in one line naming the server and the credential's source (never a
    value), when it refuses the credentials or TLS fails: nats-py's own first connect retries
    without end (and logs a traceback per try), which would leave ``engine halt``, ``engine feed``
    or an engine's start hanging instead of saying why. Raises ``ConnectionError``.

    TLS, when required (:meth:`NatsAuth.wants_tls`), is required on every connection, reconnects
    included: a token or password is released only inside a started TLS session, a first
    connection that ends up in clear text is closed and refused, and a reconnect that does is
    closed (:func:`_tls_checked`)."""
    import asyncio
    import contextlib

    from nats.aio.client import Client

    auth = auth if auth is not None else NatsAuth()
    shown = shown_url(url)
    try:
        check_url(url, auth)
        tls = tls_context(auth) if auth.wants_tls(url) else None
        options = _connect_options(auth, url, tls)
    except MissingSecret as exc:  # names the variable or file
        raise ConnectionError(f"cannot log in to the NATS server at {shown}: {exc}") from None
    except ValueError as exc:  # the option that is wrong, by name
        raise ConnectionError(str(exc)) from None
    refused: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
    last: list[str] = []

    async def on_error(exc: Exception) -> None:
        text = str(exc) or type(exc).__name__
        if not refused.done():  # the first connect: its error says it, in one line
            if _refusal(exc):
                refused.set_result(exc)
            log.debug("nats %s at %s: %s", name, shown, text)
        elif _refusal(exc) and (not last or last[-1] != text):  # a reconnect refused: once per new reason
            log.warning("nats %s at %s: %s", name, shown, text)
        else:
            log.debug("nats %s at %s: %s", name, shown, text)
        last[:] = [text]

    nc = Client()
    if tls is not None:
        callbacks["reconnected_cb"] = _tls_checked(nc, tls, name, shown, callbacks.get("reconnected_cb"))
    kwargs: dict[str, Any] = {"name": name, "connect_timeout": timeout_s, "allow_reconnect": True,
                              "max_reconnect_attempts": -1, "error_cb": on_error, **options, **callbacks}
    connecting: asyncio.Future[Any] = asyncio.ensure_future(nc.connect(url, **kwargs))
    either: set[asyncio.Future[Any]] = {connecting, refused}
    done, _pending = await asyncio.wait(either, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    if connecting in done and connecting.exception() is None:
        if tls is None or tls.started:
            refused.cancel()  # connected: later refusals (a reconnect) are logged as warnings
            if tls is not None:
                tls.checked = tls.started
            return nc
        await nc.close()
        raise ConnectionError(f"the NATS server at {shown} did not start TLS (a tls:// URL or tls_ca_file "
                              "requires it): refused")
    connecting.cancel()
    with contextlib.suppress(BaseException):
        await connecting
    with contextlib.suppress(Exception):
        await nc.close()
    if connecting in done and not connecting.cancelled() and connecting.exception() is not None:
        raise ConnectionError(f"the NATS client for {shown} failed: {connecting.exception()}")
    if refused.done():
        raise ConnectionError(_refusal_sentence(refused.result(), shown, auth)) from None
    after = f" (last error: {last[-1]})" if last else ""
    raise ConnectionError(f"no NATS server answered at {shown} within {timeout_s:g} s{after}")


def symbol_subject(venue: str, symbol: str, prefix: str = PREFIX) -> str:
    return f"{prefix}.{token('venue', venue)}.{token('symbol', symbol)}"


def venue_wildcard(venue: str, prefix: str = PREFIX) -> str:
    return f"{prefix}.{token('venue', venue)}.>"


def heartbeat_subject(venue: str) -> str:
    return f"{HEARTBEAT_PREFIX}.{token('venue', venue)}"


def halt_subject(account: str) -> str:
    return f"{HALT_PREFIX}.{token('account', account)}"


def stream_name(venue: str) -> str:
    return f"MD_{token('venue', venue).upper().replace('-', '_')}"


class WireBook(msgspec.Struct, array_like=True, tag="b", frozen=True):
    epoch: int
    seq: int
    ts: int
    sent_ns: int  # the feed's wall clock at publish: feed-to-strategy latency
    snapshot: bool
    venue_seq: int
    changes: list[tuple[Side, Decimal, Decimal]]  # Side is a str enum: "buy"/"sell" on the wire, else refused


class WireTrade(msgspec.Struct, array_like=True, tag="t", frozen=True):
    epoch: int
    seq: int
    ts: int
    sent_ns: int
    price: Decimal
    qty: Decimal
    aggressor: Side | None
    trade_id: str


class WireStatus(msgspec.Struct, array_like=True, tag="s", frozen=True):
    epoch: int
    seq: int
    ts: int
    sent_ns: int
    halted: bool | None
    reason: str
    reference_price: Decimal | None
    closing_price: Decimal | None


class Heartbeat(msgspec.Struct, array_like=True, frozen=True):
    epoch: int
    sent_ns: int
    upstream: str  # what the feed's own venue adapter last reported: connected, stale, disconnected
    symbols: int


Wire = WireBook | WireTrade | WireStatus

_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_decoder = msgspec.msgpack.Decoder(Wire)
_hb_decoder = msgspec.msgpack.Decoder(Heartbeat)


def encode(message: Wire | Heartbeat) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes) -> Wire:
    """One event; raises ``msgspec.DecodeError``/``ValidationError`` naming what is wrong. msgpack
    carries decimals as strings and msgspec reads ``"NaN"`` and ``"Infinity"`` as Decimals: a price
    or quantity that is not a finite number is refused here, before it reaches a book."""
    message = _decoder.decode(data)
    if type(message) is WireBook:
        for _, price, qty in message.changes:
            if not (price.is_finite() and qty.is_finite()):
                raise msgspec.ValidationError("WireBook: a price or quantity is not a finite number")
    elif type(message) is WireTrade:
        if not (message.price.is_finite() and message.qty.is_finite()):
            raise msgspec.ValidationError("WireTrade: the price or quantity is not a finite number")
    elif any(n is not None and not n.is_finite() for n in (message.reference_price, message.closing_price)):
        raise msgspec.ValidationError("WireStatus: a reference or closing price is not a finite number")
    return message


def decode_heartbeat(data: bytes) -> Heartbeat:
    return _hb_decoder.decode(data)


def book_wire(update: BookUpdate, epoch: int, seq: int, sent_ns: int, snapshot: bool | None = None) -> WireBook:
    return WireBook(epoch, seq, update.ts, sent_ns, update.snapshot if snapshot is None else snapshot, update.seq,
                    list(update.changes))


def trade_wire(trade: Trade, epoch: int, seq: int, sent_ns: int) -> WireTrade:
    return WireTrade(epoch, seq, trade.ts, sent_ns, trade.price, trade.qty,
                     trade.aggressor, trade.trade_id)


def status_wire(status: InstrumentStatus, epoch: int, seq: int, sent_ns: int) -> WireStatus:
    return WireStatus(epoch, seq, status.ts, sent_ns, status.halted, status.reason, status.reference_price,
                      status.closing_price)


def to_book(venue: str, symbol: str, wire: WireBook) -> BookUpdate:
    return BookUpdate(venue, symbol, wire.ts, wire.venue_seq,
                      tuple(wire.changes), wire.snapshot)


def to_trade(venue: str, symbol: str, wire: WireTrade) -> Trade:
    return Trade(venue, symbol, wire.ts, wire.price, wire.qty,
                 wire.aggressor, wire.trade_id)


def to_status(venue: str, symbol: str, wire: WireStatus) -> InstrumentStatus:
    return InstrumentStatus(venue, symbol, wire.ts, wire.halted, wire.reason, wire.reference_price,
                            wire.closing_price)
