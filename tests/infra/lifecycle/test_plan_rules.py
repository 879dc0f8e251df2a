"""The plan's rules, one per test: each force-new field of pulumi-kubernetes (diff.go), ConfigMap/Secret
mutability, delete-before-replace, replaceUnready, await, random's and docker's rules, the engine's
replace_with / replace_on_changes / ignore_changes, rolling workloads and hazards."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.lifecycle import rules
from infra.lifecycle.plan import plan
from infra.lifecycle.snapshot import Resource, Snapshot

MUTABLE = {"enableConfigMapMutable": "true", "enableSecretMutable": "true"}


def snap(*resources: Resource, provider: dict[str, str] | None = MUTABLE) -> Snapshot:
    found = {r.name: r for r in resources}
    if provider is not None:
        found["k8s"] = Resource("k8s", "pulumi:providers:kubernetes", inputs=provider)
        for r in resources:
            if r.manifest is not None:
                r.provider = "k8s"
    return Snapshot("t", found)


def k8s(manifest: dict[str, Any], name: str = "obj", **kwargs: Any) -> Resource:
    return Resource(name, f"kubernetes:x:{manifest['kind']}", manifest=manifest, **kwargs)


def one_step(old: dict, new: dict, provider: dict[str, str] | None = MUTABLE, **kwargs: Any):
    steps = plan(
        snap(k8s(old, **kwargs), provider=provider), snap(k8s(new, **kwargs), provider=provider)
    ).steps
    assert len(steps) == 1, steps
    return steps[0]


def obj(api: str, kind: str, **body: Any) -> dict[str, Any]:
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}, **body}


def changed(manifest: dict, path: str, value: Any) -> dict:
    new = copy.deepcopy(manifest)
    node = new
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[keys[-1]] = value
    return new


DEPLOYMENT = obj(
    "apps/v1",
    "Deployment",
    spec={
        "replicas": 1,
        "selector": {"matchLabels": {"a": "1"}},
        "template": {
            "metadata": {"labels": {"a": "1"}},
            "spec": {"containers": [{"name": "app", "image": "i:1"}]},
        },
    },
)
STATEFUL_SET = obj(
    "apps/v1",
    "StatefulSet",
    spec={
        "serviceName": "s",
        "podManagementPolicy": "OrderedReady",
        "revisionHistoryLimit": 10,
        "replicas": 1,
        "selector": {"matchLabels": {"a": "1"}},
        "volumeClaimTemplates": [
            {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
        ],
        "template": {
            "metadata": {"labels": {"a": "1"}},
            "spec": {"containers": [{"name": "db", "image": "i:1"}]},
        },
    },
)
JOB = obj(
    "batch/v1",
    "Job",
    spec={
        "backoffLimit": 3,
        "completions": 1,
        "parallelism": 1,
        "template": {"spec": {"containers": [{"name": "job", "image": "i:1"}]}},
    },
)
PVC = obj(
    "v1",
    "PersistentVolumeClaim",
    spec={
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "ssd",
        "resources": {"requests": {"storage": "1Gi"}},
    },
)
SERVICE = obj("v1", "Service", spec={"type": "ClusterIP", "clusterIP": "10.0.0.5", "selector": {"a": "1"}})


@pytest.mark.parametrize(
    ("manifest", "path", "value", "op"),
    [
        (DEPLOYMENT, "metadata.name", "y", "replace"),
        (DEPLOYMENT, "metadata.namespace", "other", "replace"),
        (DEPLOYMENT, "spec.selector.matchLabels", {"a": "2"}, "replace"),
        (DEPLOYMENT, "spec.replicas", 3, "update"),
        (DEPLOYMENT, "spec.template.spec.containers.0.image", "i:2", "update"),
        (STATEFUL_SET, "spec.volumeClaimTemplates.0.spec.resources.requests.storage", "2Gi", "replace"),
        (STATEFUL_SET, "spec.serviceName", "t", "replace"),
        (STATEFUL_SET, "spec.podManagementPolicy", "Parallel", "replace"),
        (STATEFUL_SET, "spec.revisionHistoryLimit", 5, "replace"),
        (STATEFUL_SET, "spec.selector.matchLabels", {"a": "2"}, "replace"),
        (STATEFUL_SET, "spec.template.spec.containers.0.image", "i:2", "update"),
        (STATEFUL_SET, "spec.replicas", 2, "update"),
        (JOB, "spec.template.spec.containers.0.image", "i:2", "replace"),
        (JOB, "spec.completions", 2, "replace"),
        (JOB, "spec.parallelism", 2, "replace"),
        (JOB, "spec.backoffLimit", 6, "update"),
        (PVC, "spec.accessModes", ["ReadWriteMany"], "replace"),
        (PVC, "spec.storageClassName", "hdd", "replace"),
        (PVC, "spec.volumeName", "pv-1", "replace"),
        (PVC, "spec.resources.requests.storage", "2Gi", "update"),
        (SERVICE, "spec.clusterIP", "10.0.0.6", "replace"),
        (SERVICE, "spec.type", "NodePort", "update"),  # not a force-new field in the provider
        (obj("v1", "ResourceQuota", spec={"scopes": ["A"]}), "spec.scopes", ["B"], "replace"),
        (
            obj("policy/v1", "PodDisruptionBudget", spec={"maxUnavailable": 1}),
            "spec.maxUnavailable",
            2,
            "update",
        ),
        (
            obj("policy/v1beta1", "PodDisruptionBudget", spec={"maxUnavailable": 1}),
            "spec.maxUnavailable",
            2,
            "replace",
        ),
        (
            obj("rbac.authorization.k8s.io/v1", "RoleBinding", roleRef={"name": "a"}),
            "roleRef.name",
            "b",
            "replace",
        ),
        (obj("storage.k8s.io/v1", "StorageClass", parameters={"t": "a"}), "parameters.t", "b", "replace"),
        (obj("v1", "Secret", type="Opaque", stringData={"k": "v"}), "type", "kubernetes.io/tls", "replace"),
    ],
)
def test_force_new_fields(manifest: dict, path: str, value: Any, op: str) -> None:
    step = one_step(manifest, changed(manifest, path, value))
    assert step.op == op, step
    if op == "replace":
        assert step.forced_by
        assert "(." in step.forced_by[0]


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_config_maps_and_secrets_are_replaced_with_the_providers_defaults(kind: str) -> None:
    key = "data"
    old = obj("v1", kind, **{key: {"k": "1"}})
    new = changed(old, f"{key}.k", "2")
    assert one_step(old, new, provider=None).op == "replace"  # the default provider
    assert one_step(old, new, provider={}).op == "replace"  # an explicit provider without the flags
    assert one_step(old, new).op == "update"  # enableConfigMapMutable / enableSecretMutable
    immutable = {**old, "immutable": True}
    assert one_step(immutable, changed(immutable, f"{key}.k", "2")).op == "replace"


def test_secret_content_is_compared_by_digest() -> None:
    secret = obj("v1", "Secret", stringData={"k": "<redacted>"})
    old, new = k8s(secret, digest="a" * 64), k8s(copy.deepcopy(secret), digest="b" * 64)
    (step,) = plan(snap(old), snap(new)).steps
    assert [(c.text, c.old, c.new) for c in step.changes] == [
        ("stringData (content digest)", "a" * 12, "b" * 12)
    ]
    assert plan(snap(k8s(secret, digest="a" * 64)), snap(k8s(secret, digest="a" * 64))).steps == []


def test_a_fixed_name_is_replaced_delete_first_an_autonamed_one_is_not() -> None:
    step = one_step(JOB, changed(JOB, "spec.completions", 2))
    assert (step.delete_first, step.operation) == (True, "replace (delete first)")
    auto = changed(JOB, "metadata.annotations", {"pulumi.com/autonamed": "true"})
    assert one_step(auto, changed(auto, "spec.completions", 2)).delete_first is False


def test_replace_unready_and_await_notes() -> None:
    job = changed(JOB, "metadata.annotations", {rules.REPLACE_UNREADY: "true"})
    step = one_step(job, changed(job, "spec.backoffLimit", 5))
    assert "replaced if its last run did not complete (replaceUnready)" in step.notes
    assert "awaits completion" in step.notes
    assert one_step(job, changed(job, "spec.completions", 5)).notes[0] == "runs again"


@pytest.mark.parametrize(
    ("manifest", "waits"),
    [
        (DEPLOYMENT, "the rollout: updated replicas available"),
        (SERVICE, "endpoints: a ready pod behind it (not for headless or selector-less Services)"),
        (changed(SERVICE, "spec.clusterIP", "None"), None),
        (obj("v1", "Service", spec={"type": "ClusterIP"}), None),
        (
            changed(
                obj("networking.k8s.io/v1", "Ingress"), "metadata.annotations", {rules.SKIP_AWAIT: "true"}
            ),
            None,
        ),
        (
            obj("networking.k8s.io/v1", "Ingress"),
            "the controller publishing an address, and its backend Services",
        ),
        (
            changed(
                obj("cert-manager.io/v1", "Certificate"),
                "metadata.annotations",
                {rules.WAIT_FOR: "condition=Ready"},
            ),
            "its waitFor condition (condition=Ready)",
        ),
        (obj("cert-manager.io/v1", "Certificate"), None),
        (obj("v1", "ConfigMap"), None),
    ],
)
def test_awaited(manifest: dict, waits: str | None) -> None:
    assert rules.awaited(manifest) == waits


def test_random_passwords_are_replaced_on_any_input_images_only_updated() -> None:
    password = Resource("pw", rules.RANDOM_PASSWORD, inputs={"length": 32})
    rotated = Resource("pw", rules.RANDOM_PASSWORD, inputs={"length": 32, "keepers": {"generation": "1"}})
    (step,) = plan(snap(password), snap(rotated)).steps
    assert step.op == "replace"
    image = Resource("img", rules.DOCKER_IMAGE, inputs={"imageName": "r/a:1"})
    rebuilt = Resource("img", rules.DOCKER_IMAGE, inputs={"imageName": "r/a:2"})
    assert plan(snap(image), snap(rebuilt)).steps[0].op == "update"


def test_replace_with_follows_the_named_resource() -> None:
    password = Resource("pw", rules.RANDOM_PASSWORD, inputs={"length": 32})
    rotated = Resource("pw", rules.RANDOM_PASSWORD, inputs={"length": 40})
    job = changed(JOB, "spec.backoffLimit", 3)
    old = snap(password, k8s(job, "job"))
    new = snap(rotated, k8s(changed(job, "spec.backoffLimit", 4), "job", options={"replace_with": ["pw"]}))
    steps = {s.resource: s for s in plan(old, new).steps}
    assert steps["job"].op == "replace"
    assert steps["job"].forced_by == ["replace_with: pw"]


def test_replace_on_changes_and_ignore_changes() -> None:
    options = {"replace_on_changes": ["spec.replicas"]}
    assert one_step(DEPLOYMENT, changed(DEPLOYMENT, "spec.replicas", 2), options=options).op == "replace"
    old, new = (
        k8s(DEPLOYMENT),
        k8s(changed(DEPLOYMENT, "spec.replicas", 2), options={"ignore_changes": ["spec.replicas"]}),
    )
    assert plan(snap(old), snap(new)).steps == []


def test_a_workload_rolls_for_a_checksum_an_image_or_its_template() -> None:
    old = changed(DEPLOYMENT, "spec.template.metadata.annotations", {"checksum/cfg": "1"})
    new = changed(
        changed(old, "spec.template.metadata.annotations", {"checksum/cfg": "2"}),
        "spec.template.spec.containers.0.image",
        "i:2",
    )
    config = k8s(obj("v1", "ConfigMap", data={}) | {"metadata": {"name": "cfg", "namespace": "ns"}}, "cfg")
    steps = plan(snap(k8s(old, "d"), config), snap(k8s(new, "d"), copy.deepcopy(config))).steps
    assert steps[0].rolls == ["ConfigMap cfg changed", "image of app: i:2"]
    assert one_step(DEPLOYMENT, changed(DEPLOYMENT, "spec.replicas", 2)).rolls == []


def test_hazard_a_mounted_object_deleted_before_it_is_recreated() -> None:
    config = obj("v1", "ConfigMap", data={"a": "1"}) | {"metadata": {"name": "cfg", "namespace": "ns"}}
    reader = changed(DEPLOYMENT, "spec.template.spec.volumes", [{"name": "c", "configMap": {"name": "cfg"}}])
    reader = changed(reader, "spec.template.metadata.annotations", {"checksum/cfg": "1"})
    base = snap(k8s(config, "cfg"), k8s(reader, "d"), provider=None)
    head = snap(
        k8s(changed(config, "data.a", "2"), "cfg"),
        k8s(changed(reader, "spec.template.metadata.annotations", {"checksum/cfg": "2"}), "d"),
        provider=None,
    )
    hazards = plan(base, head).hazards
    assert [h.kind for h in hazards] == ["mounted-object-deleted-first"]
    assert "ConfigMap/x" not in hazards[0].message
    assert "Deployment/x reads it" in hazards[0].message


def test_hazard_a_boot_time_file_that_changes_without_a_restart() -> None:
    config = obj("v1", "ConfigMap", data={"a": "1"}) | {"metadata": {"name": "cfg", "namespace": "ns"}}
    reader = changed(DEPLOYMENT, "spec.template.spec.volumes", [{"name": "c", "configMap": {"name": "cfg"}}])
    base = snap(k8s(config, "cfg"), k8s(reader, "d"))
    head = snap(k8s(changed(config, "data.a", "2"), "cfg"), k8s(copy.deepcopy(reader), "d"))
    assert [h.kind for h in plan(base, head).hazards] == ["stale-boot-config"]
