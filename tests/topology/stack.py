"""The production shape of docker-compose.yml, started natively inside the private network
namespace (scripts/topology): Debian's nginx with the shipped deploy/nginx.conf, two
``livedesk serve`` replicas, PostgreSQL (the machine's, over its Unix socket, behind a TCP proxy
this test can cut), a private redis-server, coturn with the shipped deploy/turnserver.conf and
moto's S3 server for recordings.

Every process is started once, by the exact command docs/deployment.md lists ("The topology
test"), and stopped by its own handle. Only ports, file paths, addresses and the upstream
servers are templated in the shipped configs: each swapped line must be there exactly once, so
a config that drifts fails here instead of being tested in a shape nobody ships.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
TURN_CONF = ROOT / "deploy" / "turnserver.conf"
BIN = Path(sys.executable).parent
PG_SOCKET_DIR = os.environ.get("LIVEDESK_TOPOLOGY_PG_SOCKET", "/var/run/postgresql")
# coturn relays only to public addresses (denied-peer-ip, as shipped), and the namespace's own
# address (10.203.0.1) is private: the TURN server gets a public-looking address on the
# namespace's dead-end veth. The client addresses below sit on the namespace's loopback device,
# where Chromium gathers no candidates (each gathered address costs a TURN allocation, and the
# shipped user-quota is 12). Nothing is routed out of the namespace, so no packet leaves.
TURN_ADDRESS = "11.0.0.1"
# Client addresses for the browsers: nginx's ip_hash keys on the first three octets, so each
# /24 lands on one replica; the test picks one that reaches each replica.
CLIENT_ADDRESSES = [f"10.203.{n}.1" for n in range(1, 9)]
SECRET_TURN = "topology-turn-" + uuid.uuid4().hex
STARTUP_SECONDS = 60.0


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def swap_once(conf: str, pattern: str, replacement: str) -> str:
    conf, count = re.subn(pattern, lambda _: replacement, conf, flags=re.MULTILINE)
    assert count == 1, f"the shipped config no longer has exactly one {pattern!r}"
    return conf


def add_addresses() -> None:
    """The TURN server's and the clients' addresses in the namespace (root there)."""
    assert os.environ.get("LIVEDESK_IN_NETNS") == "1", "run inside netns-run (scripts/topology does)"
    for address, device in [(TURN_ADDRESS, "ld0"), *((a, "lo") for a in CLIENT_ADDRESSES)]:
        subprocess.run(  # noqa: S603 - fixed arguments
            ["ip", "addr", "replace", f"{address}/32", "dev", device],  # noqa: S607
            check=True,
        )


async def poll(check: object, what: str, within: float) -> None:
    """Await ``check()`` until truthy, or fail after ``within`` seconds (a deadline, not a sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await check():  # type: ignore[operator]
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within}s")
        await asyncio.sleep(0.05)


async def tcp_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    return True


@dataclass
class Proc:
    """One process this test started, with its log file."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own argv
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class DatabaseProxy:
    """TCP on 127.0.0.1 in front of PostgreSQL's Unix socket (host TCP does not cross into the
    namespace). ``cut()`` drops every connection and refuses new ones: a database blip."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:
            # Only stop() cancels: the test is over and its connections go with it.
            writer.transport.abort()
            up_writer.transport.abort()
        finally:
            self._writers.discard(writer)
            self._writers.discard(up_writer)
            self._tasks.discard(task)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        if self._server is not None:
            await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class Stack:
    home: Path
    database: str
    db_proxy: DatabaseProxy
    redis_port: int = field(default_factory=free_port)
    s3_port: int = field(default_factory=free_port)
    bucket: str = "livedesk-recordings"
    procs: dict[str, Proc] = field(default_factory=dict)
    replica_ports: dict[str, int] = field(default_factory=dict)

    # --- the pieces --------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.db_proxy.port}/{self.database}"

    @property
    def direct_database_url(self) -> str:
        """For the test's own reads: the Unix socket, not the proxy it cuts."""
        return f"postgresql+asyncpg://postgres@/{self.database}?host={PG_SOCKET_DIR}"

    def app_env(self, name: str) -> dict[str, str]:
        """docker-compose.yml's x-app environment, with this namespace's addresses."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEDESK_")}
        env.update(
            {
                "LIVEDESK_IN_NETNS": "1",
                "LIVEDESK_HOST": "127.0.0.1",
                "LIVEDESK_PORT": str(self.replica_ports.get(name, 0)),
                "LIVEDESK_DATA_DIR": str(self.home / "app-data"),
                "LIVEDESK_SECRET_KEY": "topology-" + self.database,
                "LIVEDESK_TURN_SECRET": SECRET_TURN,
                "LIVEDESK_TURN_URLS": (
                    f'["turn:{TURN_ADDRESS}:3478?transport=udp", "turns:{TURN_ADDRESS}:5349?transport=tcp"]'
                ),
                "LIVEDESK_DATABASE_URL": self.database_url,
                "LIVEDESK_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "LIVEDESK_COOKIE_SECURE": "true",
                "LIVEDESK_LOG_FORMAT": "json",
                "LIVEDESK_LOG_LEVEL": "warning",
                "LIVEDESK_TRUSTED_PROXIES": '["127.0.0.1"]',
                "LIVEDESK_RECORDING_STORAGE": "s3",
                "LIVEDESK_RECORDING_OBJECT_ENDPOINT": f"http://127.0.0.1:{self.s3_port}",
                "LIVEDESK_RECORDING_OBJECT_BUCKET": self.bucket,
                "LIVEDESK_RECORDING_OBJECT_ACCESS_KEY": "topology",
                "LIVEDESK_RECORDING_OBJECT_SECRET_KEY": "topology-secret",
                # A dead consultation (both parties gone) ends only after this; the faults
                # below take a replica away for a few seconds at most.
                "LIVEDESK_CONSULTATION_GONE_GRACE_SECONDS": "120",
            }
        )
        return env

    def _proc(self, name: str, argv: list[str], **kwargs: object) -> Proc:
        proc = Proc(name, argv, self.home / f"{name}.log", **kwargs)  # type: ignore[arg-type]
        self.procs[name] = proc
        proc.start()
        return proc

    async def start_redis(self) -> None:
        # docker-compose.yml's redis command: nothing on disk.
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port)]
        self._proc("redis", [*argv, "--save", "", "--appendonly", "no"], cwd=self.home)
        await poll(lambda: tcp_open("127.0.0.1", self.redis_port), "redis-server listening", 15)

    async def start_s3(self) -> None:
        self._proc("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)])
        url = f"http://127.0.0.1:{self.s3_port}"

        async def up() -> bool:
            with contextlib.suppress(aiohttp.ClientError):
                async with aiohttp.ClientSession() as http, http.put(f"{url}/{self.bucket}") as response:
                    # Creates the bucket (compose's minio-init job does the same).
                    return response.status == 200
            return False

        await poll(up, "moto's S3 server answering", 30)

    async def start_coturn(self) -> None:
        conf = TURN_CONF.read_text()
        home = self.home
        conf = swap_once(conf, r"^listening-port=3478$", f"listening-port=3478\nlistening-ip={TURN_ADDRESS}")
        conf = swap_once(conf, r"^cert=/etc/coturn/certs/fullchain.pem$", f"cert={home}/fullchain.pem")
        conf = swap_once(conf, r"^pkey=/etc/coturn/certs/privkey.pem$", f"pkey={home}/privkey.pem")
        logs = f"log-file={home}/turn.log\npidfile={home}/turn.pid\nuserdb={home}/turndb"
        conf = swap_once(conf, r"^log-file=stdout$", logs)
        (home / "turnserver.conf").write_text(conf)
        # docker-compose.yml's coturn command: the secret on the command line.
        argv = ["turnserver", "-c", str(home / "turnserver.conf"), f"--static-auth-secret={SECRET_TURN}"]
        self._proc("coturn", argv, cwd=home)
        await poll(lambda: tcp_open(TURN_ADDRESS, 5349), "coturn listening on 5349", 15)

    def nginx_conf(self) -> str:
        conf = NGINX_CONF.read_text()
        home = self.home
        conf = swap_once(conf, r"/etc/nginx/certs/fullchain\.pem", f"{home}/fullchain.pem")
        conf = swap_once(conf, r"/etc/nginx/certs/privkey\.pem", f"{home}/privkey.pem")
        conf = swap_once(conf, r"root /var/www/acme;", f"root {home}/acme;")
        conf = swap_once(conf, r"access_log /dev/stdout main;", f"access_log {home}/access.log main;")
        conf = swap_once(conf, r"error_log /dev/stderr warn;", f"error_log {home}/nginx-error.log warn;")
        temp = "".join(f"    {kind}_temp_path {home}/{kind};\n" for kind in ("client_body", "proxy"))
        temp += "".join(f"    {kind}_temp_path {home}/{kind};\n" for kind in ("fastcgi", "uwsgi", "scgi"))
        conf = swap_once(conf, r"^http \{$", "http {\n" + temp)
        # The replicas' addresses in place of compose's fixed ones.
        servers = re.findall(r"^\s*server \d+\.\d+\.\d+\.\d+:8080 ([^;]*);$", conf, flags=re.MULTILINE)
        assert len(servers) == 2, servers
        for port, (old, options) in zip(
            self.replica_ports.values(),
            re.findall(r"^(\s*server 172\.28\.80\.1[12]:8080 ([^;]*);)$", conf, flags=re.MULTILINE),
            strict=True,
        ):
            conf = conf.replace(old, f"        server 127.0.0.1:{port} {options};")
        return conf

    async def start_nginx(self) -> None:
        (self.home / "acme").mkdir(exist_ok=True)
        (self.home / "nginx.conf").write_text(self.nginx_conf())
        argv = ["nginx", *self._nginx_args()]
        proc = self._proc("nginx", argv)

        async def up() -> bool:
            assert proc.alive, f"nginx refused deploy/nginx.conf:\n{proc.tail()}"
            return await tcp_open(CLIENT_ADDRESSES[0], 443)

        await poll(up, "nginx listening on 443", 15)

    def _nginx_args(self) -> list[str]:
        # As root, nginx's workers would otherwise run as nobody and not reach the test's files.
        globals_ = f"user root; daemon off; master_process on; pid {self.home}/nginx.pid;"
        return ["-p", str(self.home), "-c", str(self.home / "nginx.conf"), "-g", globals_]

    def nginx_reload(self) -> None:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            ["nginx", *self._nginx_args(), "-s", "reload"],  # noqa: S607
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr

    async def seed(self) -> None:
        """``livedesk demo --no-serve``: migrations and the demo staff, once, before serving."""
        env = self.app_env("seed")
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "livedesk"),
            "demo",
            "--no-serve",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode(errors="replace")

    def start_replica(self, name: str) -> Proc:
        self.replica_ports.setdefault(name, free_port())
        argv = [str(BIN / "livedesk"), "serve", "--migrate"]
        return self._proc(name, argv, env=self.app_env(name))

    async def ready(self, name: str) -> None:
        proc, url = self.procs[name], f"http://127.0.0.1:{self.replica_ports[name]}/readyz"

        async def up() -> bool:
            assert proc.alive, f"{name} exited:\n{proc.tail()}"
            with contextlib.suppress(aiohttp.ClientError):
                async with aiohttp.ClientSession() as http, http.get(url) as response:
                    return response.status == 200
            return False

        await poll(up, f"{name} ready", STARTUP_SECONDS)

    async def restart_redis(self) -> None:
        self.procs["redis"].stop()
        await self.start_redis()

    async def replica_of(self, address: str) -> str:
        """Which replica nginx sends this client address to (its access log's upstream)."""
        connector = aiohttp.TCPConnector(local_addr=(address, 0), ssl=False)
        marker = "/healthz?probe=" + uuid.uuid4().hex
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.get(f"https://{address}{marker}") as r,
        ):
            assert r.status == 200, r.status
        found: list[str] = []

        async def logged() -> bool:
            # nginx writes the line once the response is sent: it may trail the client a bit.
            found.extend(
                line for line in (self.home / "access.log").read_text().splitlines() if marker in line
            )
            return bool(found)

        await poll(logged, f"nginx's access-log line for {marker}", 5)
        port = int(found[0].rsplit("upstream=", 1)[1].split(":")[1].split(",")[0])
        return next(name for name, p in self.replica_ports.items() if p == port)

    async def stop(self) -> None:
        for name in reversed(list(self.procs)):
            self.procs[name].stop()
        await self.db_proxy.stop()


def make_certificate(home: Path) -> None:
    """A throw-away self-signed certificate for nginx and coturn (deploy/certs/ in production)."""
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1")
    files = ("-keyout", str(home / "privkey.pem"), "-out", str(home / "fullchain.pem"))
    subprocess.run(  # noqa: S603 - fixed arguments
        [openssl, "req", "-x509", *key, "-subj", f"/CN={TURN_ADDRESS}", *files],
        check=True,
        capture_output=True,
    )


def psql(sql: str) -> None:
    subprocess.run(  # noqa: S603 - fixed arguments
        ["psql", "-q", "-h", PG_SOCKET_DIR, "-U", "postgres", "-d", "postgres", "-c", sql],  # noqa: S607
        check=True,
        capture_output=True,
    )
