"""`platform check` and sandbox adapters (issue 11, item 2): a staging/prod stack that runs a
service's sandbox fails the check unless the stack allows it with a reason, which the report shows."""

from __future__ import annotations

from typing import Any

import pytest

from infra.check.sandbox import check_sandboxes
from infra.spec import REPO_ROOT, config_from_stack_file, load_spec, stack_file


def _spec(stack: str, allow: bool) -> Any:
    config = config_from_stack_file(stack_file(REPO_ROOT, stack))
    services = {name: dict(value) for name, value in (config.get("services") or {}).items()}
    payment = services.setdefault("payment-svc", {})
    payment.pop("allowSandbox", None)
    if allow:
        payment["allowSandbox"] = {"reason": "test cards only, no real money"}
    return load_spec(stack, config={**config, "services": services})


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_an_unallowed_sandbox_in_a_production_stack_is_a_finding(stack: str) -> None:
    section = check_sandboxes(_spec(stack, allow=False))
    (finding,) = section.findings
    assert (finding.name, finding.check) == ("payment-svc", "SANDBOX_IN_PRODUCTION")
    assert "allowSandbox.reason" in finding.message


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_an_allowed_sandbox_is_reported_with_its_reason(stack: str) -> None:
    spec = _spec(stack, allow=True)
    section = check_sandboxes(spec)
    assert section.ok
    assert "payment-svc runs its sandbox (test cards only, no real money)" in section.note
    assert spec.service("payment-svc").env["SANDBOX_ALLOWED_REASON"] == "test cards only, no real money"


def test_dev_runs_its_sandbox_without_an_allowance() -> None:
    section = check_sandboxes(load_spec("dev"))
    assert (section.ok, section.note) == (True, "")


def test_a_real_adapter_is_not_a_sandbox() -> None:
    config = config_from_stack_file(stack_file(REPO_ROOT, "prod"))
    services = dict(config["services"])
    services["payment-svc"] = {"env": {"PAYMENT_PROCESSOR": "stripe"}}
    section = check_sandboxes(load_spec("prod", config={**config, "services": services}))
    assert (section.ok, section.note) == (True, "")


def test_the_shipped_production_stacks_say_why_they_run_the_sandbox() -> None:
    for stack in ("staging", "prod"):
        reason = load_spec(stack).service("payment-svc").overrides.allow_sandbox
        assert reason is not None, stack
