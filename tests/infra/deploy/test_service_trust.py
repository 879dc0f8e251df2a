"""Security items moved here from issue 11 (items 14 and 15, the renderer's parts), attack-style:

* uvicorn trusts X-Forwarded-For only from the gateway (compose: its fixed address; Kubernetes: the pod
  network, which each service's NetworkPolicy closes to all but the gateway) - not every private range;
* a service holds only the credentials its manifest needs, and its manifest only what its code uses;
* compose's Redis users have the Kubernetes ACL's rules, no password is on a command line, and
  Prometheus is published on 127.0.0.1 only.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from infra.local.ports import free_port
from infra.render.compose import GATEWAY_IP, SUBNET, generated_files, redis_acl_script, render_compose
from infra.render.redis import render_redis_acl
from infra.spec import REPO_ROOT, load_spec
from tests.infra.deploy.conftest import find

PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
SPEC = load_spec("dev")


# ---------------------------------------------------------------- X-Forwarded-For


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_kubernetes_services_trust_the_pod_network_behind_their_policy(stacks, stack) -> None:
    config = load_spec(stack).config
    for svc in load_spec(stack).services:
        data = find(stacks[stack].manifests, "ConfigMap", f"{svc.name}-config")["data"]
        assert data["FORWARDED_ALLOW_IPS"] == config.cluster.pod_cidr
        assert not set(data["FORWARDED_ALLOW_IPS"].split(",")) & set(PRIVATE_RANGES)
        policy = find(stacks[stack].manifests, "NetworkPolicy", f"{svc.name}-allow-ingress")["spec"]
        peers = {
            p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in policy["ingress"][0]["from"]
        }
        assert peers == {"gateway", "prometheus"}  # Prometheus scrapes; it sends no X-Forwarded-For


def test_compose_services_trust_only_the_gateways_fixed_address() -> None:
    compose = render_compose(SPEC)
    gateway = compose["services"]["gateway"]
    assert gateway["networks"]["default"]["ipv4_address"] == GATEWAY_IP
    assert ipaddress.ip_address(GATEWAY_IP) in ipaddress.ip_network(SUBNET)
    assert compose["networks"]["default"]["ipam"]["config"] == [{"subnet": SUBNET}]
    for svc in SPEC.services:
        assert compose["services"][svc.name]["environment"]["FORWARDED_ALLOW_IPS"] == GATEWAY_IP


def test_a_service_cannot_override_the_trusted_addresses() -> None:
    from infra.errors import SpecError
    from infra.spec import load_manifest

    manifest = REPO_ROOT / "services" / "auth-svc" / "service.yaml"
    text = manifest.read_text().rstrip("\n") + "\nenv: {FORWARDED_ALLOW_IPS: '*'}\n"
    copy = Path(os.environ.get("TMPDIR", "/tmp")) / f"trust-{os.getpid()}" / "auth-svc" / "service.yaml"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text)
    with pytest.raises(SpecError, match="is set by the platform"):
        load_manifest(copy)


APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = (scope.get("client") or ("?", 0))[0].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


@pytest.mark.parametrize(("trusted", "seen"), [(GATEWAY_IP, "127.0.0.1"), ("127.0.0.1", "203.0.113.7")])
def test_uvicorn_reads_the_variable_the_contract_sets(tmp_path: Path, trusted: str, seen: str) -> None:
    """A peer outside FORWARDED_ALLOW_IPS cannot pick its client address; the trusted one can."""
    (tmp_path / "trust_app.py").write_text(APP)
    port = free_port()
    env = {**os.environ, "FORWARDED_ALLOW_IPS": trusted, "PYTHONPATH": str(tmp_path)}
    argv = [sys.executable, "-m", "uvicorn", "trust_app:app", "--port", str(port), "--proxy-headers"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
        answer = httpx.get(
            f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10
        )
        assert answer.text == seen
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- least credentials


def _uses_redis(package: Path) -> bool:
    code = "\n".join(p.read_text() for p in package.rglob("*.py"))
    return re.search(r"redis|servicekit\.cache", code, re.IGNORECASE) is not None


@pytest.mark.parametrize("svc", SPEC.services, ids=lambda s: s.name)
def test_a_manifest_needs_redis_only_when_its_code_uses_it(svc) -> None:
    """payment-svc declared Redis and so held Redis credentials it never used."""
    assert (svc.manifest.needs.redis is not None) == _uses_redis(svc.path / svc.manifest.package)


def test_payment_svc_holds_no_redis_credentials(stacks) -> None:
    manifests = stacks["dev"].manifests
    assert not [m for m in manifests if m["metadata"]["name"] == "payment-svc-redis"]
    pod = find(manifests, "Deployment", "payment-svc")["spec"]["template"]["spec"]
    sources = [s["secret"]["name"] for v in pod["volumes"] for s in v.get("projected", {}).get("sources", [])]
    assert sources == ["jwt-public-keys", "payment-svc-keys", "payment-svc-db", "payment-svc-rabbitmq"]
    assert "payment-svc" not in render_redis_acl(SPEC, {u: "x" for u in ("admin", "exporter", *SPEC_REDIS)})
    assert not [
        k for k in render_compose(SPEC)["services"]["payment-svc"]["environment"] if k.startswith("REDIS")
    ]


SPEC_REDIS = [s.name for s in SPEC.services if s.manifest.needs.redis]


# ---------------------------------------------------------------- compose: Redis and Prometheus


def test_no_password_is_on_a_command_line() -> None:
    for name, service in render_compose(SPEC)["services"].items():
        command = " ".join(service.get("command") or [])
        assert "PASSWORD" not in command, name
        assert "${" not in command, name


def test_prometheus_is_published_on_loopback_only() -> None:
    services = render_compose(SPEC)["services"]
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    published = {n: s["ports"] for n, s in services.items() if "ports" in s}
    assert set(published) == {"gateway", "prometheus"}


def _acl_rules(text: str) -> list[str]:
    """ACL lines without their password hashes."""
    return [re.sub(r" #\S+", "", line) for line in text.splitlines() if line.startswith("user ")]


@pytest.fixture
def compose_redis(tmp_path: Path):
    """The compose redis: compose/redis-acl.sh run by a real shell, then a real redis-server on
    compose/redis.conf (port and data directory moved for the test)."""
    passwords = {"REDIS_ADMIN_PASSWORD": "admin-pw"} | {
        f"{svc.upper().replace('-', '_')}_REDIS_PASSWORD": f"{svc}-pw" for svc in SPEC_REDIS
    }
    acl = tmp_path / "users.acl"
    script = tmp_path / "redis-acl.sh"
    script.write_text(generated_files(SPEC)["compose/redis-acl.sh"])
    result = subprocess.run(
        ["sh", str(script), str(acl)],
        env={"PATH": os.environ["PATH"], **passwords},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    conf = tmp_path / "redis.conf"
    text = generated_files(SPEC)["compose/redis.conf"]
    conf.write_text(text.replace('"/tmp/users.acl"', f'"{acl}"').replace('dir "/data"', f'dir "{tmp_path}"'))
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", str(conf), "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=port, username="admin", password="admin-pw").ping()
                break
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        yield port, acl, passwords
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_compose_redis_users_have_the_kubernetes_rules(compose_redis) -> None:
    _, acl, passwords = compose_redis
    written = acl.read_text()
    kubernetes = render_redis_acl(SPEC, {u: "x" for u in ("admin", "exporter", *SPEC_REDIS)})
    assert _acl_rules(written) == [r for r in _acl_rules(kubernetes) if not r.startswith("user exporter ")]
    assert not [p for p in passwords.values() if p in written]  # hashed (#<sha256>) only
    assert "#" in written


def test_a_compose_service_user_is_confined_to_its_own_keys(compose_redis) -> None:
    port, _, _ = compose_redis
    admin = redis.Redis(port=port, username="admin", password="admin-pw")
    admin.set("chat-svc:secret", "theirs")
    auth = redis.Redis(port=port, username="auth-svc", password="auth-svc-pw")
    auth.set("auth-svc:k", "v")
    assert auth.get("auth-svc:k") == b"v"
    for attack in (
        lambda: auth.get("chat-svc:secret"),  # another service's key
        lambda: auth.scan(),  # would list every service's key names
        lambda: auth.keys("*"),
        lambda: auth.flushall(),
        lambda: auth.config_get("*"),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attack()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=port, username="default").ping()


def test_committed_compose_files_carry_the_acl_script() -> None:
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    assert compose["services"]["redis"]["command"][:2] == ["sh", "-c"]
    assert (REPO_ROOT / "compose" / "redis-acl.sh").read_text() == redis_acl_script(SPEC)
