"""Namespace, data stores, gateway, monitoring, logging: one rule per test."""

from __future__ import annotations

import pytest

from infra.components.gateway import Gateway, GatewayArgs
from infra.components.logs import Logging, LoggingArgs
from infra.components.monitoring import Monitoring, MonitoringArgs
from infra.components.namespace import Namespace, NamespaceArgs
from infra.components.postgres import Postgres, PostgresArgs
from infra.components.rabbitmq import RabbitMQ, RabbitMQArgs
from infra.components.redis import Redis, RedisArgs
from infra.offline import REDACTED
from infra.spec import REPO_ROOT, config_from_stack_file, stack_file
from tests.infra.components.conftest import find


def test_namespace_has_default_deny_for_ingress_and_egress(run_mocked):
    manifests = run_mocked("dev", lambda spec: Namespace("ns", NamespaceArgs(spec=spec))).manifests
    deny = find(manifests, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_namespace_quota_comes_from_the_stack(run_mocked):
    manifests = run_mocked("prod", lambda spec: Namespace("ns", NamespaceArgs(spec=spec))).manifests
    hard = find(manifests, "ResourceQuota", "platform-quota")["spec"]["hard"]
    quota = config_from_stack_file(stack_file(REPO_ROOT, "prod"))["quota"]  # new-service raises it
    assert hard["limits.cpu"] == hard["requests.cpu"] == str(quota["cpu"])
    assert hard["limits.memory"] == hard["requests.memory"] == quota["memory"]
    assert hard["pods"] == str(quota["pods"])


def test_postgres_creates_a_db_secret_per_service_with_redacted_values(run_mocked):
    manifests = run_mocked("dev", lambda spec: Postgres("pg", PostgresArgs(spec=spec))).manifests
    secret = find(manifests, "Secret", "marketplace-svc-db")
    assert secret["stringData"] == {"POSTGRES_USER": REDACTED, "POSTGRES_PASSWORD": REDACTED}


def test_postgres_volume_claim_uses_the_stack_storage_class(run_mocked):
    manifests = run_mocked("prod", lambda spec: Postgres("pg", PostgresArgs(spec=spec))).manifests
    claim = find(manifests, "StatefulSet", "postgres")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["storageClassName"] == "ssd"
    assert claim["resources"]["requests"]["storage"] == "100Gi"


def test_postgres_backup_prunes_after_retention_days(run_mocked):
    manifests = run_mocked("prod", lambda spec: Postgres("pg", PostgresArgs(spec=spec))).manifests
    cron = find(manifests, "CronJob", "postgres-backup")["spec"]
    script = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert cron["schedule"] == "0 1 * * *"
    assert f"-mmin +{30 * 24 * 60} -delete" in script
    assert "pg_dump -Fc" in script


def test_redis_without_persistence_uses_empty_dir(run_mocked):
    manifests = run_mocked("dev", lambda spec: Redis("redis", RedisArgs(spec=spec))).manifests
    sts = find(manifests, "StatefulSet", "redis")["spec"]
    assert "volumeClaimTemplates" not in sts
    assert {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}} in sts["template"]["spec"]["volumes"]


def test_redis_with_aof_gets_a_volume_claim(run_mocked):
    manifests = run_mocked("prod", lambda spec: Redis("redis", RedisArgs(spec=spec))).manifests
    sts = find(manifests, "StatefulSet", "redis")["spec"]
    assert sts["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "appendonly yes" in find(manifests, "ConfigMap", "redis-config")["data"]["redis.conf"]


def test_rabbitmq_loads_definitions_at_boot(run_mocked):
    manifests = run_mocked("dev", lambda spec: RabbitMQ("mq", RabbitMQArgs(spec=spec))).manifests
    conf = find(manifests, "ConfigMap", "rabbitmq-config")["data"]["10-platform.conf"]
    assert "load_definitions = /etc/rabbitmq/definitions/definitions.json" in conf
    volumes = find(manifests, "StatefulSet", "rabbitmq")["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "definitions",
        "secret": {"secretName": "rabbitmq-definitions", "defaultMode": 0o440},
    } in volumes


def test_gateway_ingress_has_tls_from_the_issuers_certificate(run_mocked):
    manifests = run_mocked("prod", lambda spec: Gateway("gw", GatewayArgs(spec=spec))).manifests
    ingress = find(manifests, "Ingress", "gateway")
    assert ingress["spec"]["tls"] == [{"hosts": ["market.example.com"], "secretName": "gateway-tls"}]
    certificate = find(manifests, "Certificate", "gateway-tls")
    assert certificate["spec"]["issuerRef"]["name"] == "letsencrypt-prod"


@pytest.mark.parametrize(("stack", "expected"), [("dev", False), ("prod", True)])
def test_gateway_hpa_only_when_autoscaled(run_mocked, stack, expected):
    manifests = run_mocked(stack, lambda spec: Gateway("gw", GatewayArgs(spec=spec))).manifests
    assert any(m["kind"] == "HorizontalPodAutoscaler" for m in manifests) is expected


def test_prometheus_discovery_uses_a_namespaced_role(run_mocked):
    manifests = run_mocked("dev", lambda spec: Monitoring("mon", MonitoringArgs(spec=spec))).manifests
    assert not any(m["kind"] in ("ClusterRole", "ClusterRoleBinding") for m in manifests)
    role = find(manifests, "Role", "prometheus")
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"get", "list", "watch"}


def test_grafana_provisions_loki_as_a_datasource(run_mocked):
    def program(spec):
        logs = Logging("logs", LoggingArgs(spec=spec))
        Monitoring("mon", MonitoringArgs(spec=spec, loki_url=logs.loki_url))

    manifests = run_mocked("dev", program).manifests
    assert (
        "url: http://loki:3100" in find(manifests, "ConfigMap", "grafana-config")["data"]["datasources.yaml"]
    )


def test_promtail_mounts_pod_logs_read_only(run_mocked):
    manifests = run_mocked("dev", lambda spec: Logging("logs", LoggingArgs(spec=spec))).manifests
    container = find(manifests, "DaemonSet", "promtail")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "pod-logs", "mountPath": "/var/log/pods", "readOnly": True} in container["volumeMounts"]
