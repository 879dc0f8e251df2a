"""Gateway component: the rendered Deployment gives nginx every directory it writes to."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from infra.components import kube
from infra.components.gateway import Gateway, GatewayArgs
from infra.local.tls import ensure_tls
from infra.spec import PlatformSpec
from tests.infra.components.conftest import find
from tests.infra.render.conftest import require_tool

#: Directives whose path nginx writes: it creates the last component itself (temp and cache
#: directories) or writes the file (pid, logs), so the *parent* must exist and be writable.
WRITTEN_PATHS = re.compile(
    r"^\s*(?:\w+_temp_path|pid|proxy_cache_path|access_log|error_log)\s+(/\S+?)[;\s]", re.MULTILINE
)


def _gateway(run_mocked, stack: str) -> tuple[str, dict]:
    """(nginx.conf from the ConfigMap, the nginx container's pod spec) of a rendered Gateway."""
    manifests = run_mocked(stack, lambda spec: Gateway("gw", GatewayArgs(spec=spec))).manifests
    conf = find(manifests, "ConfigMap", "gateway-config")["data"]["nginx.conf"]
    pod = find(manifests, "Deployment", "gateway")["spec"]["template"]["spec"]
    return conf, pod


def _writable_mounts(pod: dict) -> set[str]:
    """Mount paths of the nginx container backed by an emptyDir and not read-only."""
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    container = pod["containers"][0]
    return {m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty and not m.get("readOnly")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_path_nginx_writes_is_directly_in_a_writable_empty_dir(run_mocked, stack: str) -> None:
    conf, pod = _gateway(run_mocked, stack)
    written = [p for p in WRITTEN_PATHS.findall(conf) if not p.startswith("/dev/")]
    assert len(written) >= 7  # five temp paths, pid, proxy cache
    mounts = _writable_mounts(pod)
    # An emptyDir starts empty: the directory nginx needs must be the mount point itself.
    assert {str(PurePosixPath(p).parent) for p in written} <= mounts, (written, mounts)


def test_kubernetes_config_passes_nginx_t_with_only_the_pod_mounts(run_mocked, tmp_path: Path) -> None:
    conf, pod = _gateway(run_mocked, "prod")
    root = tmp_path / "pod"
    mounts = [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]]
    for mount in mounts:
        (root / mount.lstrip("/")).mkdir(parents=True)  # every mount starts empty
    tls = ensure_tls(tmp_path / "certs")
    shutil.copy(tls.cert, root / "etc/nginx/tls/tls.crt")
    shutil.copy(tls.key, root / "etc/nginx/tls/tls.key")
    # Move the pod's filesystem under *root*; cluster DNS names cannot resolve here.
    mount_paths = "|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True))
    local = re.sub(rf"(?<=\s)({mount_paths})(?=[/;\s])", lambda m: f"{root}{m.group(1)}", conf)
    local = re.sub(r"server \S+\.svc\.cluster\.local:", "server 127.0.0.1:", local)
    path = root / "etc/nginx/platform/nginx.conf"
    path.write_text(local)
    result = subprocess.run(
        [require_tool("nginx"), "-t", "-c", str(path), "-p", str(root)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_only_the_ingress_controller_namespace_may_reach_the_gateway(run_mocked) -> None:
    def program(spec: PlatformSpec) -> None:
        gateway = spec.config.gateway.model_copy(update={"ingress_namespace": "edge-system"})
        config = spec.config.model_copy(update={"gateway": gateway})
        Gateway("gw", GatewayArgs(spec=spec.model_copy(update={"config": config})))

    manifests = run_mocked("prod", program).manifests
    # The public ports: the controller's namespace alone. The web app's pods reach only the internal
    # API listener (tests/infra/components/test_webapp.py).
    rule, internal = find(manifests, "NetworkPolicy", "gateway")["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge-system"}}}
    ]
    assert sorted(p["port"] for p in rule["ports"]) == [8080, 8443]
    assert [p["port"] for p in internal["ports"]] == [8081]
    assert all("namespaceSelector" not in peer for peer in internal["from"])


def test_network_policy_refuses_an_empty_peer_list_unless_anywhere(run_mocked) -> None:
    def program(spec: PlatformSpec) -> None:
        rules = [{"from": [], "ports": kube.ports(8080)}]
        with pytest.raises(ValueError, match="empty 'from' list allows every peer"):
            kube.network_policy("np", "open", spec, {}, {}, ingress=rules, opts=None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty 'to' list"):
            kube.network_policy("np", "open", spec, {}, {}, egress=[{"to": [], "ports": []}], opts=None)  # type: ignore[arg-type]
        kube.network_policy("np", "open", spec, {}, {}, ingress=rules, anywhere=True, opts=None)  # type: ignore[arg-type]

    (policy,) = run_mocked("dev", program).manifests
    assert policy["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
