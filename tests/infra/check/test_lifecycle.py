"""Lifecycle rules of `platform check`: each rule passes on a small consistent graph and fails on a
fixture that breaks it; every shipped stack passes all of them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from infra.check.integrity import Externals
from infra.check.lifecycle import check_lifecycle
from infra.components.image import dockerignore_text
from infra.lifecycle.plan import plan
from infra.lifecycle.rules import checksum
from infra.lifecycle.snapshot import Resource, Snapshot

NS = "market-test"
LABELS = {"app.kubernetes.io/name": "web"}
CONF = {
    "nginx.conf": "upstream api { server api.market-test.svc.cluster.local:8000; }\n"
    "server { location / { proxy_pass http://api; } }\n"
}


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, **extra}


def workload(annotations: dict[str, str], volumes: list[dict], kind: str = "Deployment") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1" if kind != "Job" else "batch/v1",
        "kind": kind,
        "metadata": meta("web", annotations={"pulumi.com/replaceUnready": "true"} if kind == "Job" else {}),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": LABELS},
            "template": {
                "metadata": {"labels": LABELS, "annotations": annotations},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "web:1",
                            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def graph() -> dict[str, Resource]:
    """A gateway-like Deployment reading a ConfigMap and a Secret, proxying to Service api: all fine."""
    secret_checksum = "f" * 64
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("web-config"), "data": CONF}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("web-secret", annotations={"checksum/content": secret_checksum}),
        "stringData": {"token": "<redacted>"},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta("api"), "spec": {"selector": LABELS}}
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": meta("quota"),
        "spec": {"hard": {"limits.cpu": "4", "limits.memory": "4Gi", "pods": "10"}},
    }
    deployment = workload(
        {"checksum/web-config": checksum(CONF), "checksum/web-secret": secret_checksum},
        [
            {"name": "c", "configMap": {"name": "web-config"}},
            {"name": "s", "secret": {"secretName": "web-secret"}},
        ],
    )
    resources = [
        Resource("config", "kubernetes:core/v1:ConfigMap", manifest=config),
        Resource("secret", "kubernetes:core/v1:Secret", manifest=secret),
        Resource("api", "kubernetes:core/v1:Service", manifest=service),
        Resource("quota", "kubernetes:core/v1:ResourceQuota", manifest=quota),
        Resource(
            "web",
            "kubernetes:apps/v1:Deployment",
            manifest=deployment,
            dependencies=("config", "secret", "api"),
        ),
    ]
    return {r.name: r for r in resources}


def run(resources: dict[str, Resource], **kwargs: Any) -> list[tuple[str, str]]:
    section = check_lifecycle(Snapshot("test", resources), **kwargs)
    return [(f.check, f.message) for f in section.findings]


def checks(resources: dict[str, Resource], **kwargs: Any) -> list[str]:
    return [check for check, _ in run(resources, **kwargs)]


@pytest.fixture
def g() -> dict[str, Resource]:
    return copy.deepcopy(graph())


def test_a_consistent_graph_passes(g) -> None:
    assert run(g) == []


# ---------------------------------------------------------------- LC-MOUNT


def test_a_mounted_secret_nobody_creates_fails(g) -> None:
    del g["secret"]
    g["web"].dependencies = ("config", "api")
    assert "LC-MOUNT" in checks(g)


def test_a_mounted_object_the_workload_does_not_wait_for_fails(g) -> None:
    g["web"].dependencies = ("config", "api")
    found = run(g)
    assert [c for c, _ in found] == ["LC-MOUNT"]
    assert "Secret web-secret, which it does not wait for" in found[0][1]


def test_waiting_through_a_parent_component_counts(g) -> None:
    g["component"] = Resource("component", "platform:x:Component", custom=False, dependencies=("secret",))
    g["web"].dependencies = ("config", "api")
    g["web"].parent = "component"
    assert run(g) == []


def test_an_optional_reference_needs_nothing(g) -> None:
    pod = g["web"].manifest["spec"]["template"]["spec"]
    pod["volumes"].append({"name": "o", "secret": {"secretName": "maybe", "optional": True}})
    assert run(g) == []


def test_an_external_secret_is_marked_external(g) -> None:
    pod = g["web"].manifest["spec"]["template"]
    pod["spec"]["volumes"].append({"name": "tls", "secret": {"secretName": "tls"}})
    assert checks(g, externals=Externals(secrets=frozenset({"tls"}))) == ["LC-CHECKSUM"]
    pod["metadata"]["annotations"]["checksum/tls"] = "external"
    assert run(g, externals=Externals(secrets=frozenset({"tls"}))) == []


def test_a_secret_issued_by_a_certificate_counts_when_waited_for(g) -> None:
    spec = {"secretName": "tls", "dnsNames": ["x.example.com"], "issuerRef": {"name": "le"}}
    cert = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta("tls"), "spec": spec}
    g["cert"] = Resource("cert", "kubernetes:cert-manager.io/v1:Certificate", manifest=cert)
    pod = g["web"].manifest["spec"]["template"]
    pod["spec"]["volumes"].append({"name": "tls", "secret": {"secretName": "tls"}})
    pod["metadata"]["annotations"]["checksum/tls"] = checksum(spec)
    assert checks(g) == ["LC-MOUNT"]
    g["web"].dependencies = (*g["web"].dependencies, "cert")
    assert run(g) == []


# ---------------------------------------------------------------- LC-CHECKSUM


def test_a_read_object_without_a_checksum_fails(g) -> None:
    del g["web"].manifest["spec"]["template"]["metadata"]["annotations"]["checksum/web-secret"]
    found = run(g)
    assert [c for c, _ in found] == ["LC-CHECKSUM"]
    assert "a change would not restart what reads it at boot" in found[0][1]


def test_a_stale_config_map_checksum_fails(g) -> None:
    g["config"].manifest["data"] = {"nginx.conf": CONF["nginx.conf"] + "# changed\n"}
    assert checks(g) == ["LC-CHECKSUM"]


def test_a_secret_checksum_that_is_not_its_contents_fails(g) -> None:
    g["secret"].manifest["metadata"]["annotations"]["checksum/content"] = "0" * 64
    assert checks(g) == ["LC-CHECKSUM"]


def test_read_at_use_needs_no_content_checksum(g) -> None:
    g["web"].manifest["spec"]["template"]["metadata"]["annotations"]["checksum/web-secret"] = "read-at-use"
    assert run(g) == []


# ---------------------------------------------------------------- LC-UPSTREAM


def test_an_upstream_service_the_gateway_does_not_wait_for_fails(g) -> None:
    g["web"].dependencies = ("config", "secret")
    found = run(g)
    assert [c for c, _ in found] == ["LC-UPSTREAM"]
    assert "proxies to api.market-test.svc.cluster.local, which nginx resolves at start" in found[0][1]


def test_an_upstream_that_is_no_service_fails(g) -> None:
    del g["api"]
    g["web"].dependencies = ("config", "secret")
    assert "no Service of the stack is called so" in run(g)[0][1]


def test_an_upstream_resolved_at_request_time_needs_no_dependency(g) -> None:
    conf = {"nginx.conf": CONF["nginx.conf"].replace(":8000;", ":8000 resolve;")}
    g["config"].manifest["data"] = conf
    g["web"].manifest["spec"]["template"]["metadata"]["annotations"]["checksum/web-config"] = checksum(conf)
    g["web"].dependencies = ("config", "secret")
    assert run(g) == []


# ---------------------------------------------------------------- LC-JOB


def test_a_job_not_replaced_when_unready_fails(g) -> None:
    job = copy.deepcopy(g["web"])
    job.name = "job"
    job.manifest = {**job.manifest, "apiVersion": "batch/v1", "kind": "Job", "metadata": meta("migrate")}
    g["job"] = job
    assert checks(g) == ["LC-JOB"]
    job.manifest["metadata"]["annotations"] = {"pulumi.com/replaceUnready": "true"}
    assert run(g) == []


# ---------------------------------------------------------------- LC-QUOTA


def test_a_rollout_peak_above_the_quota_fails(g) -> None:
    """1 replica + 1 surge pod (25% of 1, rounded up) of 1 CPU each: 2 CPU; a quota of 1.5 refuses it."""
    g["quota"].manifest["spec"]["hard"]["limits.cpu"] = "1500m"
    found = run(g)
    assert [c for c, _ in found] == ["LC-QUOTA"]
    assert "needs limits.cpu 2 (replicas or HPA maximum + surge" in found[0][1]
    assert "above the quota's 1.5" in found[0][1]


def test_the_peak_counts_the_hpa_maximum(g) -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta("web"),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4},
    }
    g["hpa"] = Resource("hpa", "kubernetes:autoscaling/v2:HorizontalPodAutoscaler", manifest=hpa)
    assert "needs limits.cpu 5" in run(g)[0][1]  # 4 + 1 surge


def test_a_daemonset_in_a_quota_namespace_fails(g) -> None:
    ds = copy.deepcopy(g["web"])
    ds.name = "ds"
    ds.manifest["kind"] = "DaemonSet"
    ds.manifest["metadata"] = meta("agent")
    g["ds"] = ds
    assert "one pod per node" in run(g)[0][1]


# ---------------------------------------------------------------- LC-IMAGE


def test_a_build_context_without_its_ignore_file_fails(g, tmp_path: Path) -> None:
    image = {"imageName": "r/web:1", "build": {"context": ".", "dockerfile": "services/web/Dockerfile"}}
    g["image"] = Resource("image", "docker:index/image:Image", inputs=image)
    (tmp_path / "services" / "web").mkdir(parents=True)
    found = run(g, root=tmp_path)
    assert [c for c, _ in found] == ["LC-IMAGE"]
    assert found[0][1].startswith("is missing")
    (tmp_path / "services" / "web" / "Dockerfile.dockerignore").write_text(dockerignore_text("web"))
    assert run(g, root=tmp_path) == []


# ---------------------------------------------------------------- with a base: LC-STORE, LC-CLAIM


def data_store(storage: str) -> dict[str, Resource]:
    sts = workload({}, [], kind="StatefulSet")
    sts["spec"]["serviceName"] = "db"
    sts["spec"]["volumeClaimTemplates"] = [
        {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": storage}}}}
    ]
    return {"db": Resource("db", "kubernetes:apps/v1:StatefulSet", manifest=sts)}


def test_replacing_a_data_store_is_refused_with_the_field_and_the_runbook() -> None:
    base, head = Snapshot("t", data_store("1Gi")), Snapshot("t", data_store("2Gi"))
    section = check_lifecycle(head, plan=plan(base, head, "origin/main"))
    assert [(f.check, f.path) for f in section.findings] == [
        (
            "LC-STORE",
            "spec.volumeClaimTemplates[0].spec.resources.requests.storage (.spec.volumeClaimTemplates)",
        ),
        ("LC-CLAIM", "spec.volumeClaimTemplates[0].spec.resources.requests.storage"),
    ]
    assert all("docs/runbooks.md#growing-a-data-stores-volume" in f.message for f in section.findings)
    assert "(compared with origin/main)" in section.findings[0].message


def test_an_allowed_replacement_is_noted_not_refused() -> None:
    base, head = Snapshot("t", data_store("1Gi")), Snapshot("t", data_store("2Gi"))
    section = check_lifecycle(head, plan=plan(base, head, "main"), allow_replace=["StatefulSet/web"])
    assert section.findings == []
    assert "StatefulSet/web: data-store-replaced allowed" in section.note


# ---------------------------------------------------------------- the shipped stacks


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_shipped_stack_passes_every_lifecycle_rule(stack: str) -> None:
    from infra.check import externals_for
    from infra.offline import render
    from infra.spec import REPO_ROOT, load_spec

    snapshot = Snapshot.from_rendered(stack, render(stack))
    section = check_lifecycle(snapshot, externals_for(load_spec(stack)), root=REPO_ROOT)
    assert [f.line() for f in section.findings] == []
    assert section.passed > 100
