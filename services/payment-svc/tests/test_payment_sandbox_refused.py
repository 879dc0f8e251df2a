"""Attack surface: production taking payments through the sandbox (issue 11, item 2).

The sandbox approves any Luhn-valid card. payment-svc refuses to start with it in staging or prod
unless the stack allowed it with a reason (which the platform passes as SANDBOX_ALLOWED_REASON).
"""

from __future__ import annotations

from typing import Any

import pytest
from payment_svc.main import create_app


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_the_sandbox_is_refused_in_production_environments(payment_settings: Any, environment: str) -> None:
    settings = payment_settings.model_copy(update={"environment": environment})
    with pytest.raises(RuntimeError, match="sandbox") as refused:
        create_app(settings)
    assert "allowSandbox" in str(refused.value)


def test_the_sandbox_runs_in_production_when_the_stack_allows_it(payment_settings: Any) -> None:
    reason = "no real processor is integrated yet; prod takes no real payments"
    settings = payment_settings.model_copy(update={"environment": "prod", "sandbox_allowed_reason": reason})
    assert create_app(settings).state.processor.name == "sandbox"


@pytest.mark.parametrize("environment", ["dev", "local", "test"])
def test_the_sandbox_runs_elsewhere(payment_settings: Any, environment: str) -> None:
    settings = payment_settings.model_copy(update={"environment": environment})
    assert create_app(settings).state.processor.name == "sandbox"
