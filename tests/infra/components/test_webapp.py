"""WebApp (the Next.js app) and the gateway's side of it: one rule per test."""

from __future__ import annotations

from functools import cache

from infra.components.gateway import Gateway, GatewayArgs
from infra.components.webapp import WebApp, WebAppArgs, api_base_url
from infra.environment import WEB_CACHE_DIR
from infra.offline import Rendered
from infra.render.nginx import INTERNAL_PORT
from infra.spec import PlatformSpec
from tests.infra.components.conftest import find

NAME = "web"


def _program(spec: PlatformSpec) -> None:
    assert spec.web is not None
    WebApp(spec.web.name, WebAppArgs(spec=spec, app=spec.web))


@cache
def _rendered(stack: str) -> Rendered:
    from infra.offline import render
    from infra.spec import load_spec

    spec = load_spec(stack)
    return render(stack, program=lambda: _program(spec))


def _pod(stack: str = "dev") -> dict:
    return find(_rendered(stack).manifests, "Deployment", NAME)["spec"]["template"]["spec"]


def test_runs_non_root_with_a_read_only_root_and_no_token():
    pod = _pod()
    container = pod["containers"][0]["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}


def test_next_cache_and_tmp_are_size_limited_empty_dirs():
    pod = _pod()
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == {WEB_CACHE_DIR, "/tmp"}
    for name in mounts.values():
        assert volumes[name]["emptyDir"]["sizeLimit"]


def test_probes_call_the_apps_health_route_on_its_port():
    container = _pod()["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_api_base_url_is_the_gateways_internal_listener(dev_spec):
    config = find(_rendered("dev").manifests, "ConfigMap", f"{NAME}-config")["data"]
    namespace = dev_spec.config.namespace
    assert config["API_BASE_URL"] == f"http://gateway.{namespace}.svc.cluster.local:{INTERNAL_PORT}"
    assert config["NODE_ENV"] == "production"
    assert config["NEXT_TELEMETRY_DISABLED"] == "1"


def test_config_change_rolls_the_pods():
    template = find(_rendered("dev").manifests, "Deployment", NAME)["spec"]["template"]
    assert f"checksum/{NAME}-config" in template["metadata"]["annotations"]


def test_no_credentials_reach_the_pod():
    assert not any(m["kind"] == "Secret" for m in _rendered("dev").manifests)
    assert "secret" not in str(_pod()["volumes"]).lower()


def test_ingress_only_from_the_gateway_on_its_port():
    policy = find(_rendered("dev").manifests, "NetworkPolicy", f"{NAME}-allow-ingress")["spec"]
    peers = [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in policy["ingress"][0]["from"]]
    assert peers == ["gateway"]
    assert policy["ingress"][0]["ports"] == [{"port": 3000, "protocol": "TCP"}]


def test_egress_only_to_the_gateways_internal_listener():
    policy = find(_rendered("dev").manifests, "NetworkPolicy", f"{NAME}-allow-egress")["spec"]
    assert policy["policyTypes"] == ["Egress"]
    rules = policy["egress"]
    assert len(rules) == 1
    assert rules[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "gateway"
    assert rules[0]["ports"] == [{"port": INTERNAL_PORT, "protocol": "TCP"}]


def test_pdb_and_service_select_the_pods():
    manifests = _rendered("dev").manifests
    labels = find(manifests, "Deployment", NAME)["spec"]["template"]["metadata"]["labels"]
    for kind, path in (("PodDisruptionBudget", ("selector", "matchLabels")), ("Service", ("selector",))):
        selector = find(manifests, kind, NAME)["spec"]
        for key in path:
            selector = selector[key]
        assert selector
        assert all(labels[k] == v for k, v in selector.items())


def test_hpa_only_where_the_stack_autoscales():
    assert not any(m["kind"] == "HorizontalPodAutoscaler" for m in _rendered("dev").manifests)
    hpa = find(_rendered("prod").manifests, "HorizontalPodAutoscaler", NAME)["spec"]
    assert hpa["scaleTargetRef"]["name"] == NAME
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 8)
    assert "replicas" not in find(_rendered("prod").manifests, "Deployment", NAME)["spec"]


def test_image_builds_the_apps_own_folder():
    image = next(r for r in _rendered("dev").resources if r["type"] == "docker:index/image:Image")
    assert image["inputs"]["build"]["context"] == "frontend"
    assert image["inputs"]["build"]["dockerfile"] == "frontend/Dockerfile"


def _gateway(run_mocked) -> list[dict]:
    return run_mocked("dev", lambda spec: Gateway("gateway", GatewayArgs(spec=spec))).manifests


def test_gateway_admits_the_web_app_on_the_internal_listener_only(run_mocked):
    manifests = _gateway(run_mocked)
    policy = find(manifests, "NetworkPolicy", "gateway")["spec"]
    internal = [r for r in policy["ingress"] if {"port": INTERNAL_PORT, "protocol": "TCP"} in r["ports"]]
    assert len(internal) == 1
    assert internal[0]["ports"] == [{"port": INTERNAL_PORT, "protocol": "TCP"}]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in internal[0]["from"]] == [NAME]
    egress = {
        (p["podSelector"]["matchLabels"]["app.kubernetes.io/name"], port["port"])
        for r in policy["egress"]
        for p in r["to"]
        for port in r["ports"]
    }
    assert (NAME, 3000) in egress


def test_gateway_service_exposes_the_internal_port_the_app_calls(run_mocked, dev_spec):
    service = find(_gateway(run_mocked), "Service", "gateway")["spec"]
    ports = {p["name"]: p["port"] for p in service["ports"]}
    assert ports["internal"] == INTERNAL_PORT
    assert api_base_url(dev_spec).endswith(f":{ports['internal']}")
