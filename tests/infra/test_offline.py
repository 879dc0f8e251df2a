"""The offline engine and stack-wide rules every rendered stack must satisfy."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from infra.errors import SpecError
from infra.offline import REDACTED, Rendered, dump_manifests, mock_password, render, write_manifests
from infra.spec import DERIVED_SUFFIXES, RESERVED_NAMES, STACKS, load_spec

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


@pytest.fixture(scope="module")
def rendered() -> dict[str, Rendered]:
    return {stack: render(stack) for stack in STACKS}


def _pod_specs(manifests: list[dict]):
    for m in manifests:
        if m["kind"] not in WORKLOADS:
            continue
        spec = m["spec"]
        if m["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        yield m, spec["template"]["spec"]


def _containers(manifests: list[dict]):
    for m, pod in _pod_specs(manifests):
        for c in pod["containers"]:
            yield m, pod, c


def test_render_twice_is_byte_identical():
    assert dump_manifests(render("dev").manifests) == dump_manifests(render("dev").manifests)


def test_manifests_are_sorted_by_kind_namespace_name(rendered):
    keys = [
        (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"])
        for m in rendered["dev"].manifests
    ]
    assert keys == sorted(keys)


def test_ints_stay_ints(rendered):
    ports = [
        p["containerPort"] for _, _, c in _containers(rendered["dev"].manifests) for p in c.get("ports", [])
    ]
    assert ports
    assert all(type(p) is int for p in ports)
    assert "containerPort: 8000\n" in dump_manifests(rendered["dev"].manifests)


@pytest.mark.parametrize("stack", STACKS)
def test_every_secret_value_is_redacted(rendered, stack):
    secrets = [m for m in rendered[stack].manifests if m["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        values = {**secret.get("data", {}), **secret.get("stringData", {})}
        assert values, secret["metadata"]["name"]
        assert set(values.values()) == {REDACTED}, secret["metadata"]["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_no_mocked_password_appears_anywhere(rendered, stack):
    result = rendered[stack]
    text = dump_manifests(result.manifests) + json.dumps(result.outputs) + json.dumps(result.resources)
    passwords = [
        mock_password(stack, r["name"], r["inputs"]["length"])
        for r in result.resources
        if r["type"] == "random:index/randomPassword:RandomPassword"
    ]
    assert len(passwords) >= 10
    assert not [p for p in passwords if p in text]


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_is_hardened(rendered, stack):
    for m, pod, c in _containers(rendered[stack].manifests):
        where = f"{m['kind']}/{m['metadata']['name']}/{c['name']}"
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"] == {"drop": ["ALL"]}, where
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert set(c["resources"]) == {"requests", "limits"}, where
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), where


@pytest.mark.parametrize("stack", STACKS)
def test_long_running_containers_have_probes(rendered, stack):
    for m, _, c in _containers(rendered[stack].manifests):
        if m["kind"] in ("Job", "CronJob"):
            continue
        assert {"livenessProbe", "readinessProbe"} <= set(c), f"{m['metadata']['name']}/{c['name']}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_image_is_pinned(rendered, stack):
    for _m, _, c in _containers(rendered[stack].manifests):
        image = c["image"]
        name, _, tag = image.split("@")[0].rpartition(":")
        assert name, image
        assert "/" not in tag, image
        assert tag not in ("", "latest"), image


@pytest.mark.parametrize("stack", STACKS)
def test_every_namespace_has_default_deny(rendered, stack):
    manifests = rendered[stack].manifests
    namespaces = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
    config = load_spec(stack).config
    assert namespaces == [config.namespace, config.logs_namespace]
    for ns in namespaces:
        assert any(
            m["kind"] == "NetworkPolicy"
            and m["metadata"]["namespace"] == ns
            and m["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
            for m in manifests
        )


@pytest.mark.parametrize("stack", STACKS)
def test_every_name_not_derived_from_a_service_is_reserved(rendered, stack):
    """A service called like a platform object (or its component label) would collide with it."""
    spec = load_spec(stack)
    services = {app.name for app in (*spec.services, *spec.web_apps)}
    derived = services | {f"{svc}{suffix}" for svc in services for suffix in DERIVED_SUFFIXES}
    names = {
        value
        for m in rendered[stack].manifests
        if m["kind"] != "Namespace"
        for value in (m["metadata"]["name"], m["metadata"]["labels"]["app.kubernetes.io/name"])
    }
    assert len(names) > 30
    assert names - derived - RESERVED_NAMES == set()


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_pass_strict_schema_validation(rendered, stack):
    version = load_spec(stack).config.kubernetes_version + ".0"
    for manifest in rendered[stack].manifests:
        if manifest["apiVersion"] == "cert-manager.io/v1":
            continue  # a custom resource: infra/check/schema.py validates it against cert-manager's models
        kubernetes_validate.validate(manifest, version, strict=True)


def test_stack_outputs_name_the_gateway_namespace_and_images(rendered):
    outputs = rendered["prod"].outputs
    assert outputs["gateway_url"] == "https://market.example.com"
    assert outputs["namespace"] == "market-prod"
    prod = load_spec("prod")
    assert sorted(outputs["images"]) == sorted(
        [s.name for s in prod.services] + [w.name for w in prod.web_apps]
    )


def test_dump_yaml_is_multi_document_and_json_round_trips(rendered):
    manifests = rendered["dev"].manifests
    assert list(yaml.safe_load_all(dump_manifests(manifests))) == manifests
    assert json.loads(dump_manifests(manifests, fmt="json")) == manifests


def test_write_manifests_writes_one_file_per_object(rendered, tmp_path):
    paths = write_manifests(rendered["dev"].manifests, tmp_path / "out")
    assert len(paths) == len(rendered["dev"].manifests) == len(set(paths))
    assert (tmp_path / "out" / "deployment-auth-svc.yaml").exists()


def test_unknown_stack_is_a_spec_error():
    with pytest.raises(SpecError, match="unknown stack 'qa'"):
        render("qa")


def test_a_render_after_asyncio_run_needs_no_current_loop() -> None:
    """``asyncio.run`` (or Playwright's sync API) leaves the main thread without a current loop;
    Pulumi's SDK asks for one, so a later in-process render must bring its own."""
    import asyncio

    asyncio.run(asyncio.sleep(0))
    try:
        assert render("dev").manifests
    finally:
        asyncio.set_event_loop(asyncio.new_event_loop())
