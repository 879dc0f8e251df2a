"""`promtool test rules` cases, generated from the spec so thresholds follow each stack.

For every alert: a *bad* input that must fire (with exact labels and annotations) and a *good* input
that must not. Inputs are 1-minute series in promtool's expanding notation.
"""

from __future__ import annotations

import re
from typing import Any

from infra.render.alerts import render_alert_rules
from infra.spec import PlatformSpec

Series = list[tuple[str, str]]


def _sel(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _requests(service: str, ok_per_min: int, errors_per_min: int) -> Series:
    base = {"service": service, "method": "GET", "route": "/x"}
    return [
        (f"http_requests_total{_sel({**base, 'status': '200'})}", f"0+{ok_per_min}x60"),
        (f"http_requests_total{_sel({**base, 'status': '500'})}", f"0+{errors_per_min}x60"),
    ]


def _latency(service: str, slow: bool) -> Series:
    base = {"service": service, "method": "GET", "route": "/x", "status": "200"}
    fast_rate = "0+0x60" if slow else "0+10x60"
    return [
        (f"http_request_duration_seconds_bucket{_sel({**base, 'le': '0.1'})}", fast_rate),
        (f"http_request_duration_seconds_bucket{_sel({**base, 'le': '1'})}", fast_rate),
        (f"http_request_duration_seconds_bucket{_sel({**base, 'le': '5'})}", "0+10x60"),
        (f"http_request_duration_seconds_bucket{_sel({**base, 'le': '+Inf'})}", "0+10x60"),
    ]


def _rules_by_alert(spec: PlatformSpec) -> dict[str, dict[str, Any]]:
    """Alert name -> one rule (per-service alerts: the first service's)."""
    found: dict[str, dict[str, Any]] = {}
    for group in render_alert_rules(spec)["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                found.setdefault(rule["alert"], rule)
    return found


def _annotations(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    def fill(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), text)

    return {k: fill(v) for k, v in rule["annotations"].items()}


def _case(
    rule: dict[str, Any], series: Series, eval_time: str, fired: list[dict[str, str]]
) -> dict[str, Any]:
    """One promtool test: *series*, then at *eval_time* exactly the alerts whose labels are *fired*."""
    exp = []
    for series_labels in fired:
        labels = {**series_labels, **rule["labels"]}  # rule labels win, as in Prometheus
        exp.append({"exp_labels": labels, "exp_annotations": _annotations(rule, labels)})
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "alert_rule_test": [{"eval_time": eval_time, "alertname": rule["alert"], "exp_alerts": exp}],
    }


def cases(spec: PlatformSpec) -> dict[str, list[dict[str, Any]]]:
    """Alert name -> [fires-on-bad test, silent-on-good test, ...]."""
    rules = _rules_by_alert(spec)
    svc = sorted(s.name for s in spec.services)[0]
    ns = spec.config.namespace
    all_up: Series = [
        (f'up{{job="services", service="{s.name}", instance="{s.name}:8000"}}', "1x60") for s in spec.services
    ]
    others_up = [s for s in all_up if f'service="{svc}"' not in s[0]]
    target = f'up{{job="services", service="{svc}", instance="{svc}:8000"}}'

    def service_alert(name: str, bad: Series, good: Series, at: str) -> list[dict[str, Any]]:
        rule = rules[name]
        return [_case(rule, bad, at, [{"service": svc}]), _case(rule, good, at, [])]

    out: dict[str, list[dict[str, Any]]] = {
        "ServiceDown": [
            _case(rules["ServiceDown"], [*others_up, (target, "0x60")], "10m", [{"service": svc}]),
            _case(rules["ServiceDown"], others_up, "10m", [{"job": "services", "service": svc}]),
            _case(rules["ServiceDown"], all_up, "10m", []),
        ],
        "ServiceHighErrorRatio": service_alert(
            "ServiceHighErrorRatio", _requests(svc, 10, 10), _requests(svc, 1000, 1), "20m"
        ),
        "ServiceHighLatencyP99": service_alert(
            "ServiceHighLatencyP99", _latency(svc, slow=True), _latency(svc, slow=False), "30m"
        ),
        "ServiceErrorBudgetBurnFast": service_alert(
            "ServiceErrorBudgetBurnFast", _requests(svc, 10, 10), _requests(svc, 10000, 1), "30m"
        ),
        "ServiceErrorBudgetBurnSlow": service_alert(
            "ServiceErrorBudgetBurnSlow", _requests(svc, 10, 10), _requests(svc, 10000, 1), "20m"
        ),
    }
    dep = {"service": svc, "dependency": "redis", "instance": f"{svc}:8000", "job": "services"}
    out["ServiceDependencyDown"] = [
        _case(
            rules["ServiceDependencyDown"],
            [(f"dependency_up{_sel(dep)}", "0x20")],
            "10m",
            [{"service": svc, "dependency": "redis"}],
        ),
        _case(rules["ServiceDependencyDown"], [(f"dependency_up{_sel(dep)}", "1x20")], "10m", []),
    ]
    pg = {"job": "postgres", "instance": "pg:9187"}
    redis = {"job": "redis", "instance": "redis:9121"}
    rabbit = {"job": "rabbitmq", "instance": "rabbitmq:15692"}
    for name, metric, labels in (
        ("PostgresDown", "pg_up", pg),
        ("RedisDown", "redis_up", redis),
        ("RabbitmqDown", "up", rabbit),
    ):
        rule = rules[name]
        out[name] = [
            _case(rule, [(f"{metric}{_sel(labels)}", "0x20")], "10m", [labels]),
            _case(rule, [], "10m", [{"job": "rabbitmq"} if metric == "up" else {}]),
            _case(rule, [(f"{metric}{_sel(labels)}", "1x20")], "10m", []),
        ]
    dlq = {"queue": f"{svc}.dlq", "vhost": "market"}
    main_q = {"queue": f"{svc}.events", "vhost": "market"}
    ready = "rabbitmq_detailed_queue_messages_ready"
    out["RabbitmqDeadLetterQueueNotEmpty"] = [
        _case(
            rules["RabbitmqDeadLetterQueueNotEmpty"],
            [(f"{ready}{_sel(dlq)}", "3x20")],
            "10m",
            [{**dlq, "service": svc}],
        ),
        _case(
            rules["RabbitmqDeadLetterQueueNotEmpty"],
            [(f"{ready}{_sel(dlq)}", "0x20"), (f"{ready}{_sel(main_q)}", "50x20")],
            "10m",
            [],
        ),
    ]
    out["RabbitmqQueueBacklog"] = [
        _case(
            rules["RabbitmqQueueBacklog"],
            [(f"{ready}{_sel(main_q)}", "5000x30")],
            "15m",
            [{**main_q, "service": svc}],
        ),
        _case(
            rules["RabbitmqQueueBacklog"],
            [(f"{ready}{_sel(main_q)}", "10x30"), (f"{ready}{_sel(dlq)}", "5000x30")],
            "15m",
            [],
        ),
    ]
    gw = "gateway_http_requests_total"
    out["GatewayHighErrorRatio"] = [
        _case(
            rules["GatewayHighErrorRatio"],
            [(f'{gw}{{status="200"}}', "0+10x30"), (f'{gw}{{status="502"}}', "0+10x30")],
            "15m",
            [{}],
        ),
        _case(
            rules["GatewayHighErrorRatio"],
            [(f'{gw}{{status="200"}}', "0+1000x30"), (f'{gw}{{status="502"}}', "0+1x30")],
            "15m",
            [],
        ),
    ]
    crash = {"namespace": ns, "pod": f"{svc}-abc", "container": svc, "reason": "CrashLoopBackOff"}
    elsewhere = {**crash, "namespace": "someone-else"}
    wr = "kube_pod_container_status_waiting_reason"
    out["KubePodCrashLooping"] = [
        _case(
            rules["KubePodCrashLooping"], [(f"{wr}{_sel(crash)}", "1x40")], "30m", [{**crash, "service": svc}]
        ),
        _case(
            rules["KubePodCrashLooping"],
            [(f"{wr}{_sel(crash)}", "0x40"), (f"{wr}{_sel(elsewhere)}", "1x40")],
            "30m",
            [],
        ),
    ]
    dep = {"namespace": ns, "deployment": svc}
    out["KubeWorkloadNotReady"] = [
        _case(
            rules["KubeWorkloadNotReady"],
            [
                (f"kube_deployment_spec_replicas{_sel(dep)}", "3x40"),
                (f"kube_deployment_status_replicas_available{_sel(dep)}", "1x40"),
            ],
            "30m",
            [{**dep, "service": svc}],
        ),
        _case(
            rules["KubeWorkloadNotReady"],
            [
                (f"kube_deployment_spec_replicas{_sel(dep)}", "3x40"),
                (f"kube_deployment_status_replicas_available{_sel(dep)}", "3x40"),
            ],
            "30m",
            [],
        ),
    ]
    return out
