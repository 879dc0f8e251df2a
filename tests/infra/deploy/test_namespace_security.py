"""Security items moved here from issue 11 (item 14): Pod Security Admission enforces ``restricted`` on the
stack's namespace (Promtail, which needs a hostPath, runs in a namespace of its own), and Prometheus and
Promtail reach only the Kubernetes API server outside the cluster network, not 0.0.0.0/0."""

from __future__ import annotations

import pytest

from infra.spec import load_spec
from tests.infra.deploy.conftest import find

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
#: Volume types the restricted profile allows (Kubernetes' pod security standards).
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def pods(manifests: list[dict], namespace: str):
    for m in manifests:
        if m["kind"] in WORKLOADS and m["metadata"]["namespace"] == namespace:
            spec = m["spec"]["jobTemplate"]["spec"] if m["kind"] == "CronJob" else m["spec"]
            yield m, spec["template"]["spec"]


def restricted_violations(pod: dict) -> list[str]:
    """The restricted profile's rules a pod spec breaks (pod-security-standards, restricted, v1.30)."""
    problems = []
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)}")
    pod_ctx = pod.get("securityContext", {})
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append("host namespaces")
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        ctx = c.get("securityContext", {})
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation")
        if ctx.get("capabilities", {}).get("drop") != ["ALL"] or set(
            ctx.get("capabilities", {}).get("add", [])
        ) - {"NET_BIND_SERVICE"}:
            problems.append(f"{c['name']}: capabilities")
        if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
            problems.append(f"{c['name']}: runAsNonRoot")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{c['name']}: seccomp")
        if ctx.get("privileged") or any(p.get("hostPort") for p in c.get("ports", [])):
            problems.append(f"{c['name']}: privileged/hostPort")
    return problems


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_stacks_namespace_enforces_restricted(stacks, stack) -> None:
    namespace = load_spec(stack).config.namespace
    labels = find(stacks[stack].manifests, "Namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert (
        labels["pod-security.kubernetes.io/enforce-version"]
        == f"v{load_spec(stack).config.kubernetes_version}"
    )


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_pod_of_the_stacks_namespace_is_restricted(stacks, stack) -> None:
    namespace = load_spec(stack).config.namespace
    checked = 0
    for m, pod in pods(stacks[stack].manifests, namespace):
        assert restricted_violations(pod) == [], f"{m['kind']}/{m['metadata']['name']}"
        checked += 1
    assert checked > 10


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_promtail_runs_alone_in_the_logs_namespace(stacks, stack) -> None:
    config = load_spec(stack).config
    logs = f"{config.namespace}-logs"
    namespace = find(stacks[stack].manifests, "Namespace", logs)
    # Its hostPath is beyond baseline too, so nothing is enforced here; violations are still reported.
    assert "pod-security.kubernetes.io/enforce" not in namespace["metadata"]["labels"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert [(m["kind"], m["metadata"]["name"]) for m, _ in pods(stacks[stack].manifests, logs)] == [
        ("DaemonSet", "promtail")
    ]
    kinds = {
        (m["kind"], m["metadata"]["name"])
        for m in stacks[stack].manifests
        if m["metadata"].get("namespace") == logs
    }
    assert {("NetworkPolicy", "logs-default-deny"), ("NetworkPolicy", "logs-allow-dns")} <= kinds


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
@pytest.mark.parametrize("name", ["prometheus", "promtail"])
def test_api_server_egress_is_the_api_server_only(stacks, stack, name) -> None:
    api = load_spec(stack).config.cluster.api_server
    policy = next(
        m for m in stacks[stack].manifests if m["kind"] == "NetworkPolicy" and m["metadata"]["name"] == name
    )
    blocks = [
        (peer["ipBlock"]["cidr"], tuple(p["port"] for p in rule["ports"]))
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert blocks == [(cidr, (api.port,)) for cidr in api.cidrs]
    assert "0.0.0.0/0" not in str(policy)


def test_no_namespace_leaves_room_for_its_logs_namespace() -> None:
    from infra.errors import SpecError

    config = load_spec("dev").config.model_dump(by_alias=True, exclude_none=True)
    config["namespace"] = "n" * 59
    with pytest.raises(SpecError) as error:
        load_spec("dev", config=config)
    assert error.value.field == "platform:namespace"
