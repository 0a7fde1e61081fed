"""The shipped deploy/turnserver.conf in the real coturn (Debian's 4.6): with a time-limited
credential made the way livedesk makes them, a browser may relay to public peers and never to
internal ones; allocations are logged; TURN over TLS answers. Only the listening address and
ports, the certificate and the log/state files are templated.

A small TURN client (RFC 5766 Allocate and CreatePermission with long-term credentials) is
enough: a permission is what a browser needs before anything is relayed to a peer, and it is
where coturn applies denied-peer-ip. scripts/test installs coturn; without it these skip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import shutil
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TURN_CONF = Path(__file__).resolve().parents[2] / "deploy" / "turnserver.conf"
TURNSERVER = shutil.which("turnserver")
HOST = "127.0.0.1"
MAGIC = 0x2112A442
SECRET = "turn-test-secret"

pytestmark = pytest.mark.skipif(
    TURNSERVER is None, reason="coturn is not installed (scripts/test installs it)"
)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _attribute(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _attributes(body: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(body):
        kind, length = struct.unpack_from("!HH", body, offset)
        found.setdefault(kind, body[offset + 4 : offset + 4 + length])
        offset += 4 + length + (-length % 4)
    return found


@dataclass
class TurnClient:
    """One UDP TURN client with a livedesk-style credential ("<expiry>:<id>", HMAC password)."""

    port: int
    username: str = ""
    realm: bytes = b""
    nonce: bytes = b""

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2)
        self.username = f"{int(time.time()) + 600}:shopper-{secrets.token_hex(4)}"
        digest = hmac.new(SECRET.encode(), self.username.encode(), hashlib.sha1).digest()
        self.password = base64.b64encode(digest).decode()

    def request(self, method: int, attributes: bytes, *, signed: bool = True) -> tuple[int, dict[int, bytes]]:
        """Send one request; the answer's class (0 success, 1 error) and attributes."""
        transaction = secrets.token_bytes(12)
        if signed:
            attributes += _attribute(0x0006, self.username.encode())
            attributes += _attribute(0x0014, self.realm) + _attribute(0x0015, self.nonce)
            header = struct.pack("!HHI", method, len(attributes) + 24, MAGIC) + transaction
            key = hashlib.md5(  # noqa: S324 - the key derivation RFC 5389 prescribes
                f"{self.username}:{self.realm.decode()}:{self.password}".encode()
            ).digest()
            attributes += _attribute(0x0008, hmac.new(key, header + attributes, hashlib.sha1).digest())
        self.sock.sendto(
            struct.pack("!HHI", method, len(attributes), MAGIC) + transaction + attributes, (HOST, self.port)
        )
        while True:
            data = self.sock.recv(2048)
            if data[8:20] == transaction:
                break
        kind = struct.unpack_from("!H", data)[0]
        return (1 if kind & 0x0110 == 0x0110 else 0), _attributes(data[20:])

    def allocate(self) -> int:
        """Allocate a relay address: 200 or coturn's error code."""
        transport = _attribute(0x0019, bytes([17, 0, 0, 0]))  # REQUESTED-TRANSPORT: UDP
        outcome, found = self.request(0x0003, transport, signed=False)
        assert outcome == 1
        assert found[0x0009][2:4] == bytes([4, 1]), found  # 401: here are realm and nonce
        self.realm, self.nonce = found[0x0014], found[0x0015]
        outcome, found = self.request(0x0003, transport)
        return 200 if outcome == 0 else found[0x0009][2] * 100 + found[0x0009][3]

    def permit(self, peer: str) -> int:
        """CreatePermission for ``peer``: 200 or coturn's error code (403 for a denied peer)."""
        address = int.from_bytes(socket.inet_aton(peer), "big") ^ MAGIC
        value = struct.pack("!BBHI", 0, 1, 3478 ^ (MAGIC >> 16), address)
        outcome, found = self.request(0x0008, _attribute(0x0012, value))
        if outcome == 0:
            return 200
        error = found[0x0009]
        return error[2] * 100 + error[3]

    def close(self) -> None:
        self.sock.close()


@dataclass
class Coturn:
    port: int
    tls_port: int
    log: Path


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    assert TURNSERVER is not None
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    files = ("-keyout", str(tmp_path / "privkey.pem"), "-out", str(tmp_path / "fullchain.pem"))
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1")
    subprocess.run(  # noqa: S603 - fixed arguments
        [openssl, "req", "-x509", *key, "-subj", "/CN=localhost", *files],
        check=True,
        capture_output=True,
    )
    port, tls_port, relay = (
        _free_port(socket.SOCK_DGRAM),
        _free_port(socket.SOCK_STREAM),
        _free_port(socket.SOCK_DGRAM),
    )
    conf = TURN_CONF.read_text()
    swaps = {
        r"^listening-port=3478$": f"listening-port={port}\nlistening-ip={HOST}\nrelay-ip={HOST}",
        r"^tls-listening-port=\d+$": f"tls-listening-port={tls_port}",
        r"^cert=/etc/coturn/certs/fullchain.pem$": f"cert={tmp_path}/fullchain.pem",
        r"^pkey=/etc/coturn/certs/privkey.pem$": f"pkey={tmp_path}/privkey.pem",
        r"^min-port=\d+$": f"min-port={relay}",
        r"^max-port=\d+$": f"max-port={relay + 20}",
        r"^log-file=stdout$": f"log-file={tmp_path}/turn.log\npidfile={tmp_path}/turn.pid\n"
        f"userdb={tmp_path}/turndb",
    }
    for pattern, replacement in swaps.items():
        conf, count = re.subn(pattern, replacement, conf, flags=re.MULTILINE)
        assert count == 1, f"deploy/turnserver.conf no longer has exactly one {pattern}"
    (tmp_path / "turnserver.conf").write_text(conf)
    process = subprocess.Popen(  # noqa: S603 - coturn found on PATH, our arguments
        [TURNSERVER, "-c", str(tmp_path / "turnserver.conf"), f"--static-auth-secret={SECRET}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        _wait_for_binding(port, process)
        yield Coturn(port=port, tls_port=tls_port, log=tmp_path / "turn.log")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_binding(port: int, process: subprocess.Popen[bytes]) -> None:
    """Poll with STUN Binding requests until coturn answers (a deadline, not a sleep)."""
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while True:
            assert process.poll() is None, "coturn refused deploy/turnserver.conf"
            sock.sendto(struct.pack("!HHI", 0x0001, 0, MAGIC) + secrets.token_bytes(12), (HOST, port))
            try:
                if sock.recv(2048):
                    return
            except TimeoutError:
                pass
            assert time.monotonic() < deadline, "coturn did not answer within 10 s"


def test_relays_to_public_peers_and_never_to_internal_ones(coturn: Coturn) -> None:
    client = TurnClient(coturn.port)
    try:
        assert client.allocate() == 200
        for peer in ("8.8.8.8", "1.1.1.1", "93.184.216.34"):
            assert client.permit(peer) == 200, peer
        for peer in ("127.0.0.1", "10.1.2.3", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1"):
            assert client.permit(peer) == 403, peer
    finally:
        client.close()
    # The allocation is in the log, with the credential's user name (coturn's verbose mode).
    log = coturn.log.read_text()
    assert f"user <{client.username}>: incoming packet ALLOCATE processed, success" in log


def test_a_wrong_secret_gets_no_allocation(coturn: Coturn) -> None:
    client = TurnClient(coturn.port)
    client.password = base64.b64encode(hmac.new(b"guess", client.username.encode(), "sha1").digest()).decode()
    try:
        assert client.allocate() == 401
    finally:
        client.close()


def test_turn_over_tls_answers(coturn: Coturn) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((HOST, coturn.tls_port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        # A STUN Binding request over the TLS connection gets a Binding success answer.
        tls.sendall(struct.pack("!HHI", 0x0001, 0, MAGIC) + secrets.token_bytes(12))
        assert struct.unpack("!H", tls.recv(2048)[:2])[0] == 0x0101
