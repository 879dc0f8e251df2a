"""FastApiService: one rule per test."""

from __future__ import annotations

from infra.components import kube
from infra.components.service import FastApiService, FastApiServiceArgs, secret_files
from infra.spec import Needs, PlatformSpec, ServiceSpec
from tests.infra.components.conftest import find


def _service(spec: PlatformSpec, name: str = "marketplace-svc") -> ServiceSpec:
    return spec.service(name)


def _build(run_mocked, stack="dev", svc_name="marketplace-svc", mutate=None):
    def program(spec: PlatformSpec) -> None:
        svc = _service(spec, svc_name)
        if mutate:
            svc = mutate(svc)
        secrets = [kube.Source("Secret", name, "test") for name in secret_files(svc)]
        FastApiService(svc.name, FastApiServiceArgs(spec=spec, service=svc, secrets=secrets))

    return run_mocked(stack, program)


def test_deployment_runs_as_non_root(run_mocked):
    pod = find(_build(run_mocked).manifests, "Deployment", "marketplace-svc")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["runAsUser"] == 10001


def test_pdb_selector_equals_pod_labels(run_mocked):
    manifests = _build(run_mocked).manifests
    labels = find(manifests, "Deployment", "marketplace-svc")["spec"]["template"]["metadata"]["labels"]
    selector = find(manifests, "PodDisruptionBudget", "marketplace-svc")["spec"]["selector"]["matchLabels"]
    assert selector
    assert all(labels[k] == v for k, v in selector.items())


def test_service_selects_pods_on_named_http_port(run_mocked):
    manifests = _build(run_mocked).manifests
    deployment = find(manifests, "Deployment", "marketplace-svc")
    service = find(manifests, "Service", "marketplace-svc")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "protocol": "TCP", "targetPort": "http"}
    ]


def _egress_targets(manifests: list[dict], svc: str) -> list[tuple[str, int]]:
    policy = find(manifests, "NetworkPolicy", f"{svc}-allow-egress")["spec"]
    assert policy["policyTypes"] == ["Egress"]
    return [
        (peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"], port["port"])
        for rule in policy.get("egress", [])
        for peer in rule["to"]
        for port in rule["ports"]
    ]


def test_egress_allows_exactly_the_three_backends_it_needs(run_mocked):
    targets = _egress_targets(_build(run_mocked).manifests, "marketplace-svc")
    assert targets == [("postgres", 5432), ("redis", 6379), ("rabbitmq", 5672)]


def test_egress_allows_nothing_for_a_service_without_needs(run_mocked):
    def no_needs(svc: ServiceSpec) -> ServiceSpec:
        return svc.model_copy(update={"manifest": svc.manifest.model_copy(update={"needs": Needs()})})

    rendered = _build(run_mocked, mutate=no_needs)
    assert _egress_targets(rendered.manifests, "marketplace-svc") == []
    assert not any(m["kind"] == "Job" for m in rendered.manifests)  # no database, no migration


def test_ingress_only_from_gateway_and_prometheus(run_mocked):
    policy = find(_build(run_mocked).manifests, "NetworkPolicy", "marketplace-svc-allow-ingress")["spec"]
    peers = [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in policy["ingress"][0]["from"]]
    assert peers == ["gateway", "prometheus"]
    assert policy["ingress"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]


def test_no_hpa_without_autoscale(run_mocked):
    manifests = _build(run_mocked, stack="dev").manifests
    assert not any(m["kind"] == "HorizontalPodAutoscaler" for m in manifests)
    assert find(manifests, "Deployment", "marketplace-svc")["spec"]["replicas"] == 1


def test_hpa_with_autoscale_owns_the_replica_count(run_mocked):
    manifests = _build(run_mocked, stack="prod").manifests
    hpa = find(manifests, "HorizontalPodAutoscaler", "marketplace-svc")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "marketplace-svc"}
    assert "replicas" not in find(manifests, "Deployment", "marketplace-svc")["spec"]


def test_migration_job_precedes_deployment(run_mocked):
    rendered = _build(run_mocked)
    job = find(rendered.manifests, "Job", "marketplace-svc-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["upgrade", "head"]
    assert "marketplace-svc-migrate" in rendered.depends_on("marketplace-svc-deployment")


def test_migration_job_mounts_only_the_database_secret(run_mocked):
    pod = find(_build(run_mocked).manifests, "Job", "marketplace-svc-migrate")["spec"]["template"]["spec"]
    projected = [v["projected"] for v in pod["volumes"] if "projected" in v]
    secrets = [src["secret"]["name"] for p in projected for src in p["sources"]]
    assert secrets == ["marketplace-svc-db"]
    assert all("secret" not in v for v in pod["volumes"])
    assert all("secretKeyRef" not in e.get("valueFrom", {}) for e in pod["containers"][0].get("env", []))


def test_migration_job_environment_satisfies_the_service_settings(run_mocked, tmp_path, monkeypatch):
    """What the Job's pod gets (ConfigMap + env + mounted files) is enough for the service's Settings
    (no token key: migrations neither sign nor verify)."""
    from marketplace_svc.core.config import Settings

    manifests = _build(run_mocked).manifests
    pod = find(manifests, "Job", "marketplace-svc-migrate")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    (config_ref,) = [src["configMapRef"]["name"] for src in container["envFrom"]]
    for key, value in find(manifests, "ConfigMap", config_ref)["data"].items():
        monkeypatch.setenv(key, value)
    for env in container.get("env", []):
        monkeypatch.setenv(env["name"], env["value"])
    for volume in pod["volumes"]:
        for source in volume.get("projected", {}).get("sources", []):
            for item in source["secret"]["items"]:
                (tmp_path / item["path"]).write_text(f"from-{item['key']}")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))  # where the pod mounts them
    settings = Settings()  # type: ignore[call-arg]
    assert settings.database_url.startswith("postgresql+asyncpg://from-POSTGRES_USER:from-POSTGRES_PASSWORD@")


def test_config_map_carries_the_contract_variables(run_mocked, dev_spec):
    data = find(_build(run_mocked).manifests, "ConfigMap", "marketplace-svc-config")["data"]
    assert data["POSTGRES_DB"] == "marketplace"
    assert data["REDIS_DB"] == "1"
    assert data["RABBITMQ_VHOST"] == "market"
    assert data["RABBITMQ_RETRY_DELAYS_MS"] == "1000,5000,30000"
    assert data["JWT_ISSUER"] == f"https://{dev_spec.config.domain}/api/auth"


def test_image_is_content_tagged_and_built_from_repo_root(run_mocked, dev_spec):
    rendered = _build(run_mocked)
    (image,) = [r for r in rendered.resources if r["type"] == "docker:index/image:Image"]
    name = image["inputs"]["imageName"]
    assert name.startswith(f"{dev_spec.config.registry}/marketplace-svc:")
    assert len(name.rsplit(":", 1)[1]) == 12
    assert image["inputs"]["build"]["context"] == "."
    assert image["inputs"]["build"]["dockerfile"] == "services/marketplace-svc/Dockerfile"
    container = find(rendered.manifests, "Deployment", "marketplace-svc")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == name


def test_workload_waits_for_its_own_credentials_and_the_data_servers_only():
    from infra.offline import render

    depends = set(render("dev").depends_on("marketplace-svc-deployment"))
    assert {
        "postgres-marketplace-svc-db",
        "postgres-bootstrap",
        "redis-marketplace-svc-redis",
        "redis-statefulset",
        "rabbitmq-marketplace-svc-credentials",
        "rabbitmq-statefulset",
        "shared-jwt-public-keys",
    } <= depends
    assert "shared-jwt" not in depends  # the signing key is the issuer's alone
    assert not {d for d in depends if d.startswith(("postgres-", "redis-", "rabbitmq-")) and "-svc-" in d} - {
        "postgres-marketplace-svc-db",
        "redis-marketplace-svc-redis",
        "rabbitmq-marketplace-svc-credentials",
    }  # no other service's Secret, no whole component (which would expand to all of its children)
    assert "postgres-backup" not in depends
