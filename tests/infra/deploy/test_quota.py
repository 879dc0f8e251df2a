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
    assert show("limits.cpu", peak.need("limits.cpu")) == "13.9"  # 12.9 before the web app (2 x 500m)
    assert peak.need("limits.cpu") > 8
