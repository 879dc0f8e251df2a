"""Defect A10: the dev quota could not hold a rollout (steady limits.cpu 7.1, quota 8, then surge pods and
migration Jobs). Every stack's quota holds the peak of a rolling update of every workload."""

from __future__ import annotations

import pytest

from infra.lifecycle.capacity import RESOURCES, peaks, show


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_quota_holds_the_peak_of_an_up(stacks, stack) -> None:
    (peak,) = peaks(stacks[stack].manifests)
    assert peak.over() == [], {r: (show(r, peak.need(r)), show(r, peak.hard[r])) for r in RESOURCES}
    kinds = {d.kind for d in peak.demands}
    assert {"Deployment", "StatefulSet", "Job", "CronJob"} <= kinds
    surge = [d for d in peak.demands if d.kind == "Deployment"]
    assert all("surge" in d.why for d in surge)


def test_the_peak_is_above_the_steady_state(stacks) -> None:
    """The reason the old dev quota failed: surge pods and Jobs on top of 7.1 CPU of limits."""
    (peak,) = peaks(stacks["dev"].manifests)
    steady = sum(
        (d.per_pod.get("limits.cpu", 0) * (d.pods - 1 if d.kind == "Deployment" else d.pods))
        for d in peak.demands
        if d.kind in ("Deployment", "StatefulSet")
    )
    deployments = [d for d in peak.demands if d.kind == "Deployment"]
    surge = sum(d.per_pod.get("limits.cpu", 0) for d in deployments)
    jobs = sum(d.total("limits.cpu") for d in peak.demands if d.kind in ("Job", "CronJob"))
    assert peak.need("limits.cpu") == steady + surge + jobs
    assert surge > 0
    assert jobs > 0
    assert peak.need("limits.cpu") > 8  # the old quota
