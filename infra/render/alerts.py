"""Prometheus recording and alerting rules derived from the spec.

Per service: target down, 5xx ratio above ``monitoring.errorRatio``, p99 latency above
``monitoring.latencyP99Seconds``, and multi-window multi-burn-rate SLO alerts (Google SRE workbook,
chapter 5: page at 14.4x over 1h/5m or 6x over 6h/30m; ticket at 3x over 1d/2h or 1x over 3d/6h) for
the availability target ``monitoring.sloAvailability``. Platform: postgres, redis, rabbitmq down,
dead-letter queue not empty, queue backlog, gateway 5xx, and workload health (kube-state-metrics).

Every alert carries labels ``severity`` (``critical`` pages, ``warning`` tickets) and ``service``, and
annotations ``summary``, ``description`` and ``runbook_url`` (``docs/runbooks.md#<alertname lowercased>``).
"""

from __future__ import annotations

from typing import Any

from infra.spec import PlatformSpec

RUNBOOK_BASE = "docs/runbooks.md"
#: Windows the SLO recording rules are computed over.
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
#: (severity, [(long window, short window, burn factor)], for) of the two burn-rate alerts.
BURN_RATE_ALERTS = (
    ("ServiceErrorBudgetBurnFast", "critical", (("1h", "5m", 14.4), ("6h", "30m", 6.0)), "2m"),
    ("ServiceErrorBudgetBurnSlow", "warning", (("1d", "2h", 3.0), ("3d", "6h", 1.0)), "15m"),
)
QUEUE_BACKLOG_MESSAGES = 1000


def _num(value: float) -> str:
    """A threshold as PromQL text, without float noise (1 - 0.995 -> 0.005)."""
    return f"{value:.6g}"


def errors_ratio_record(window: str) -> str:
    """Name of the recording rule holding the per-service 5xx ratio over *window*."""
    return f"service:http_request_errors:ratio_rate{window}"


P99_RECORD = "service:http_request_duration_seconds:p99_5m"


def _alert(
    name: str,
    expr: str,
    *,
    severity: str,
    service: str,
    summary: str,
    description: str,
    duration: str,
    runbook_base: str,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, "service": service},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{runbook_base}#{name.lower()}",
        },
    }


def _recording_rules() -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for window in SLO_WINDOWS:
        rules.append(
            {
                "record": errors_ratio_record(window),
                "expr": (
                    f'sum by (service) (rate(http_requests_total{{status=~"5.."}}[{window}]))\n'
                    f"/\nsum by (service) (rate(http_requests_total[{window}]))"
                ),
            }
        )
    rules.append(
        {
            "record": P99_RECORD,
            "expr": (
                "histogram_quantile(0.99, sum by (service, le) "
                "(rate(http_request_duration_seconds_bucket[5m])))"
            ),
        }
    )
    return {"name": "slo-recording", "rules": rules}


def _service_group(spec: PlatformSpec, service: str, runbook_base: str) -> dict[str, Any]:
    mon = spec.config.monitoring
    sel = f'service="{service}"'
    up = f'up{{job="services", {sel}}}'
    budget = 1 - mon.slo_availability
    rules = [
        _alert(
            "ServiceDown",
            f"max({up}) == 0 or absent({up})",
            severity="critical",
            service=service,
            summary=f"{service} has no healthy scrape target",
            description=f"Prometheus cannot scrape any {service} instance for 2 minutes.",
            duration="2m",
            runbook_base=runbook_base,
        ),
        _alert(
            "ServiceHighErrorRatio",
            f"{errors_ratio_record('5m')}{{{sel}}} > {_num(mon.error_ratio)}",
            severity="critical",
            service=service,
            summary=f"{service} answers too many 5xx",
            description=(
                f"More than {_num(mon.error_ratio * 100)}% of {service} requests failed with 5xx "
                "over 5 minutes."
            ),
            duration="5m",
            runbook_base=runbook_base,
        ),
        _alert(
            "ServiceHighLatencyP99",
            f"{P99_RECORD}{{{sel}}} > {_num(mon.latency_p99_seconds)}",
            severity="warning",
            service=service,
            summary=f"{service} p99 latency is high",
            description=(
                f"p99 latency of {service} is above {_num(mon.latency_p99_seconds)}s for 10 minutes."
            ),
            duration="10m",
            runbook_base=runbook_base,
        ),
    ]
    rules.append(
        _alert(
            "ServiceDependencyDown",
            f"min by (service, dependency) (dependency_up{{{sel}}}) == 0",
            severity="warning",
            service=service,
            summary=f"{service} cannot reach {{{{ $labels.dependency }}}}",
            description=(
                f"{service} has reported {{{{ $labels.dependency }}}} unreachable for 5 minutes: "
                "what needs it answers 503 + Retry-After; the rest is served (readiness fails only on "
                "required dependencies)."
            ),
            duration="5m",
            runbook_base=runbook_base,
        )
    )
    for name, severity, windows, duration in BURN_RATE_ALERTS:
        clauses = [
            f"({errors_ratio_record(long)}{{{sel}}} > {_num(factor * budget)}\n"
            f" and {errors_ratio_record(short)}{{{sel}}} > {_num(factor * budget)})"
            for long, short, factor in windows
        ]
        rules.append(
            _alert(
                name,
                "\nor\n".join(clauses),
                severity=severity,
                service=service,
                summary=f"{service} is burning its error budget",
                description=(
                    f"{service} consumes its {_num(mon.slo_availability * 100)}% availability error "
                    f"budget at {' / '.join(_num(f) for _, _, f in windows)}x the sustainable rate."
                ),
                duration=duration,
                runbook_base=runbook_base,
            )
        )
    return {"name": f"service-{service}", "rules": rules}


def _platform_group(spec: PlatformSpec, runbook_base: str) -> dict[str, Any]:
    mon = spec.config.monitoring
    ns = spec.config.namespace

    def alert(name: str, expr: str, severity: str, service: str, summary: str, duration: str) -> dict:
        return _alert(
            name,
            expr,
            severity=severity,
            service=service,
            summary=summary,
            description=summary,
            duration=duration,
            runbook_base=runbook_base,
        )

    gateway_total = "sum(rate(gateway_http_requests_total[5m]))"
    gateway_5xx = 'sum(rate(gateway_http_requests_total{status=~"5.."}[5m]))'
    rules = [
        alert(
            "PostgresDown",
            "pg_up == 0 or absent(pg_up)",
            "critical",
            "postgres",
            "PostgreSQL is down (postgres_exporter reports pg_up == 0 or is gone)",
            "2m",
        ),
        alert(
            "RedisDown",
            "redis_up == 0 or absent(redis_up)",
            "critical",
            "redis",
            "Redis is down (redis_exporter reports redis_up == 0 or is gone)",
            "2m",
        ),
        alert(
            "RabbitmqDown",
            'up{job="rabbitmq"} == 0 or absent(up{job="rabbitmq"})',
            "critical",
            "rabbitmq",
            "RabbitMQ is down (its metrics endpoint cannot be scraped)",
            "2m",
        ),
        alert(
            "RabbitmqDeadLetterQueueNotEmpty",
            'label_replace(rabbitmq_detailed_queue_messages_ready{queue=~".+\\\\.dlq"} > 0, '
            '"service", "$1", "queue", "(.+)\\\\.dlq")',
            "warning",
            "rabbitmq",
            "Dead-lettered messages are waiting in {{ $labels.queue }}",
            "5m",
        ),
        alert(
            "RabbitmqQueueBacklog",
            f'label_replace(rabbitmq_detailed_queue_messages_ready{{queue=~".+\\\\.events"}} '
            f'> {QUEUE_BACKLOG_MESSAGES}, "service", "$1", "queue", "(.+)\\\\.events")',
            "warning",
            "rabbitmq",
            f"More than {QUEUE_BACKLOG_MESSAGES} messages wait in {{{{ $labels.queue }}}}",
            "10m",
        ),
        alert(
            "GatewayHighErrorRatio",
            f"{gateway_5xx} / {gateway_total} > {_num(mon.error_ratio)}",
            "critical",
            "gateway",
            "The gateway answers too many 5xx",
            "5m",
        ),
        alert(
            "KubePodCrashLooping",
            "label_replace(max_over_time(kube_pod_container_status_waiting_reason"
            f'{{namespace="{ns}", reason="CrashLoopBackOff"}}[5m]) >= 1, '
            '"service", "$1", "container", "(.+)")',
            "warning",
            "workload",
            "Container {{ $labels.container }} of {{ $labels.pod }} is crash looping",
            "15m",
        ),
        alert(
            "KubeWorkloadNotReady",
            f'label_replace(kube_deployment_spec_replicas{{namespace="{ns}"}} > '
            f'kube_deployment_status_replicas_available{{namespace="{ns}"}}, '
            '"service", "$1", "deployment", "(.+)")\nor\n'
            f'label_replace(kube_statefulset_replicas{{namespace="{ns}"}} > '
            f'kube_statefulset_status_replicas_ready{{namespace="{ns}"}}, '
            '"service", "$1", "statefulset", "(.+)")',
            "warning",
            "workload",
            "Workload {{ $labels.service }} has fewer ready replicas than desired",
            "15m",
        ),
    ]
    # label_replace alerts take `service` from the series; drop the static one so it is not overridden.
    for rule in rules:
        if "label_replace" in rule["expr"]:
            del rule["labels"]["service"]
    return {"name": "platform", "rules": rules}


def render_alert_rules(spec: PlatformSpec, *, runbook_base: str = RUNBOOK_BASE) -> dict[str, Any]:
    """The rule file (``groups:``) as a dict: recording rules, one group per service, platform alerts."""
    groups = [_recording_rules()]
    groups += [
        _service_group(spec, svc.name, runbook_base) for svc in sorted(spec.services, key=lambda s: s.name)
    ]
    groups.append(_platform_group(spec, runbook_base))
    return {"groups": groups}


def alert_names(spec: PlatformSpec) -> list[str]:
    """Every distinct alert name the rules define, sorted."""
    rules = render_alert_rules(spec)
    return sorted({r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r})
