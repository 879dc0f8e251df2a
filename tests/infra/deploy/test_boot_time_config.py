"""Defect A3: whatever a server reads only at start rolls it when it changes. Redis reads its ACL file and
RabbitMQ its definitions only at boot; a new service that needs them (or a new event, consumer or retry
delay) must change their pod templates - without a secret value in an annotation."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from infra.offline import Rendered, mock_password, render
from infra.platform import build_platform
from infra.spec import (
    Needs,
    PlatformSpec,
    RabbitNeed,
    RedisNeed,
    ServiceManifest,
    ServiceOverrides,
    ServiceSpec,
    load_spec,
)
from tests.infra.deploy.conftest import find

HEX = re.compile(r"^[0-9a-f]{64}$")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def render_spec(stack: str, change: Callable[[PlatformSpec], PlatformSpec]) -> Rendered:
    """The whole program for *stack* with its spec changed by *change*."""
    spec = change(load_spec(stack))
    return render(stack, program=lambda: build_platform(spec))


def with_service(spec: PlatformSpec, needs: Needs, name: str = "orders-svc") -> PlatformSpec:
    base = spec.service("payment-svc")
    manifest = ServiceManifest(name=name, route=f"/api/{name.removesuffix('-svc')}", needs=needs)
    svc = ServiceSpec(manifest=manifest, overrides=ServiceOverrides(), path=base.path.parent / name)
    return spec.model_copy(update={"services": (*spec.services, svc)})


def template(rendered: Rendered, kind: str, name: str) -> dict:
    return find(rendered.manifests, kind, name)["spec"]["template"]


@pytest.fixture(scope="module")
def base() -> Rendered:
    return render_spec("dev", lambda spec: spec)


def test_a_new_redis_user_restarts_redis(base) -> None:
    changed = render_spec("dev", lambda spec: with_service(spec, Needs(redis=RedisNeed(db=5))))
    assert template(changed, "StatefulSet", "redis") != template(base, "StatefulSet", "redis")


@pytest.mark.parametrize(
    "needs",
    [
        Needs(rabbitmq=RabbitNeed(publishes=["order.placed"])),  # a new event and broker user
        Needs(rabbitmq=RabbitNeed(consumes=["listing.created"])),  # a new consumer queue
    ],
    ids=["publisher", "consumer"],
)
def test_a_topology_change_restarts_rabbitmq(base, needs) -> None:
    changed = render_spec("dev", lambda spec: with_service(spec, needs))
    assert template(changed, "StatefulSet", "rabbitmq") != template(base, "StatefulSet", "rabbitmq")


def test_new_retry_delays_restart_rabbitmq(base) -> None:
    def slower(spec: PlatformSpec) -> PlatformSpec:
        rabbit = spec.config.rabbitmq.model_copy(update={"retry_delays_ms": [2000, 20000]})
        return spec.model_copy(update={"config": spec.config.model_copy(update={"rabbitmq": rabbit})})

    changed = render_spec("dev", slower)
    assert template(changed, "StatefulSet", "rabbitmq") != template(base, "StatefulSet", "rabbitmq")


def test_unrelated_changes_do_not_restart_the_data_stores(base) -> None:
    """A service that needs only Postgres changes neither Redis's nor RabbitMQ's pods."""
    changed = render_spec("dev", lambda spec: with_service(spec, Needs()))
    for name in ("redis", "rabbitmq"):
        assert template(changed, "StatefulSet", name) == template(base, "StatefulSet", name)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_config_map_and_secret_a_pod_reads_has_its_checksum(stacks, stack) -> None:
    rendered = stacks[stack]
    for m in rendered.manifests:
        if m["kind"] not in WORKLOADS:
            continue
        pod = m["spec"]["template"]
        annotations = pod["metadata"].get("annotations", {})
        read = {v["configMap"]["name"] for v in pod["spec"].get("volumes", []) if "configMap" in v}
        read |= {v["secret"]["secretName"] for v in pod["spec"].get("volumes", []) if "secret" in v}
        for volume in pod["spec"].get("volumes", []):
            for source in volume.get("projected", {}).get("sources", []):
                for key in ("secret", "configMap"):
                    if key in source:
                        read.add(source[key]["name"])
        for container in pod["spec"]["containers"]:  # variables (the web app reads only its ConfigMap)
            for source in container.get("envFrom", []):
                for key in ("configMapRef", "secretRef"):
                    if key in source:
                        read.add(source[key]["name"])
        read -= {"kube-root-ca.crt"}  # published by Kubernetes itself
        assert read, m["metadata"]["name"]
        missing = sorted(n for n in read if f"checksum/{n}" not in annotations)
        assert missing == [], f"{m['kind']}/{m['metadata']['name']} reads {missing} without a checksum"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_value_reaches_an_annotation(stacks, stack) -> None:
    rendered = stacks[stack]
    passwords = [
        mock_password(stack, r["name"], int(r["inputs"].get("length", 32)), r["inputs"].get("keepers"))
        for r in rendered.resources
        if r["type"] == "random:index/randomPassword:RandomPassword"
    ]
    assert passwords
    for m in rendered.manifests:
        if m["kind"] not in WORKLOADS:
            continue
        for value in m["spec"]["template"]["metadata"].get("annotations", {}).values():
            assert HEX.match(value) or value in ("read-at-use", "external"), value
            assert not any(p in value for p in passwords)
