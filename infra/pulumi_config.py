"""Read the ``platform:*`` keys from the Pulumi engine (honours ``pulumi config set``)."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.spec import StackConfig


def stack_config_from_pulumi() -> dict[str, Any]:
    """Every ``platform:*`` key the engine knows, as plain values (objects decoded from JSON)."""
    config = pulumi.Config("platform")
    result: dict[str, Any] = {}
    for name, field in StackConfig.model_fields.items():
        key = field.alias or name
        value = config.get_object(key)
        if value is None:
            value = config.get(key)
        if value is not None:
            result[key] = value
    return result
