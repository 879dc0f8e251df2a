"""Loki (single binary, filesystem storage) and Promtail configs.

Why Loki + Promtail: every component already logs JSON lines to stdout, and the cluster writes them to
``/var/log/pods``. Promtail (a DaemonSet) tails those files, labels them from Kubernetes metadata and
ships them to Loki, which indexes only the labels and stores chunks on a plain volume - no
Elasticsearch cluster, a few hundred MiB of RAM, retention by the compactor, and Grafana queries it
natively next to Prometheus. Promtail's ``metrics`` stage also turns the gateway's JSON access log into
``gateway_http_requests_total{status}`` for Prometheus (open-source nginx exposes no status counters).

Labels are kept low-cardinality: ``namespace, app, pod, container, level, service`` (plus ``status`` on
gateway streams). ``request_id`` is extracted but stays in the line: query it with
``{app="x"} | json | request_id="..."``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.spec import PlatformSpec

LOKI_PORT = 3100
PROMTAIL_PORT = 9080
SCHEMA_FROM = "2024-01-01"
JSON_FIELDS = {"level": "level", "request_id": "request_id", "service": "service", "status": "status"}


def render_loki_config(
    spec: PlatformSpec, *, data_dir: str = "/loki", port: int = LOKI_PORT
) -> dict[str, Any]:
    """Loki config: one replica, TSDB index + chunks on the filesystem, retention ``logging.retention``."""
    retention = spec.config.logging.retention
    return {
        "auth_enabled": False,
        "server": {"http_listen_port": port, "grpc_listen_port": 9096, "log_level": "info"},
        "common": {
            "path_prefix": data_dir,
            "replication_factor": 1,
            "instance_addr": "127.0.0.1",
            "ring": {"kvstore": {"store": "inmemory"}},
            "storage": {
                "filesystem": {
                    "chunks_directory": f"{data_dir}/chunks",
                    "rules_directory": f"{data_dir}/rules",
                }
            },
        },
        "schema_config": {
            "configs": [
                {
                    "from": SCHEMA_FROM,
                    "store": "tsdb",
                    "object_store": "filesystem",
                    "schema": "v13",
                    "index": {"prefix": "index_", "period": "24h"},
                }
            ]
        },
        "limits_config": {
            "retention_period": retention,
            "reject_old_samples": True,
            "reject_old_samples_max_age": retention,
            "max_query_lookback": retention,
        },
        "compactor": {
            "working_directory": f"{data_dir}/compactor",
            "compaction_interval": "10m",
            "retention_enabled": True,
            "retention_delete_delay": "2h",
            "delete_request_store": "filesystem",
        },
        "analytics": {"reporting_enabled": False},
    }


def _pipeline() -> list[dict[str, Any]]:
    return [
        {"cri": {}},
        {"json": {"expressions": JSON_FIELDS}},
        {"labels": {"level": None, "service": None}},
        {
            "match": {
                "selector": '{app="gateway"}',
                "stages": [
                    {"labels": {"status": None}},
                    {
                        "metrics": {
                            "http_requests_total": {
                                "type": "Counter",
                                "description": "Requests answered by the gateway (from its access log).",
                                "prefix": "gateway_",
                                "source": "status",
                                "max_idle_duration": "1h",
                                "config": {"action": "inc"},
                            }
                        }
                    },
                ],
            }
        },
    ]


def _kubernetes_job(namespace: str) -> dict[str, Any]:
    meta = "__meta_kubernetes_pod_"
    return {
        "job_name": "kubernetes-pods",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
        "pipeline_stages": _pipeline(),
        "relabel_configs": [
            {"source_labels": [f"{meta}label_app_kubernetes_io_name"], "target_label": "app"},
            {"source_labels": ["app"], "regex": "", "action": "drop"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": [f"{meta}name"], "target_label": "pod"},
            {"source_labels": [f"{meta}container_name"], "target_label": "container"},
            {
                "source_labels": [f"{meta}uid", f"{meta}container_name"],
                "separator": "/",
                "target_label": "__path__",
                "replacement": "/var/log/pods/*$1/*.log",
            },
        ],
    }


def _local_job(log_files: Mapping[str, str]) -> dict[str, Any]:
    stages = [stage for stage in _pipeline() if "cri" not in stage]
    return {
        "job_name": "local-files",
        "pipeline_stages": stages,
        "static_configs": [
            {"targets": ["localhost"], "labels": {"app": app, "__path__": path}}
            for app, path in sorted(log_files.items())
        ],
    }


def render_promtail_config(
    spec: PlatformSpec,
    loki_url: str,
    *,
    positions_file: str = "/run/promtail/positions.yaml",
    log_files: Mapping[str, str] | None = None,
    port: int = PROMTAIL_PORT,
) -> dict[str, Any]:
    """Promtail config shipping to *loki_url* (base URL, e.g. ``http://loki:3100``).

    Default: Kubernetes pods of the stack's namespace. With *log_files* (app -> file glob) it tails
    local files instead (the native runner), with the same JSON pipeline.
    """
    job = _local_job(log_files) if log_files is not None else _kubernetes_job(spec.config.namespace)
    return {
        "server": {"http_listen_port": port, "grpc_listen_port": 0, "log_level": "info"},
        "positions": {"filename": positions_file},
        "clients": [
            {
                "url": f"{loki_url.rstrip('/')}/loki/api/v1/push",
                "external_labels": {"stack": spec.stack},
            }
        ],
        "scrape_configs": [job],
    }
