"""Read the ``platform:*`` keys from the Pulumi engine (honours ``pulumi config set``)."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from infra.spec import StackConfig


def stack_config_from_pulumi() -> dict[str, Any]:
    """Every ``platform:*`` key the engine knows: objects and lists decoded, scalars as strings.

    The engine passes every value as a string; only JSON objects/arrays are decoded, so a string such as
    ``"1.30"`` stays a string instead of becoming the number 1.3.
    """
    config = pulumi.Config("platform")
    result: dict[str, Any] = {}
    for name, field in StackConfig.model_fields.items():
        key = field.alias or name
        raw = config.get(key)
        if raw is None:
            continue
        result[key] = json.loads(raw) if raw.lstrip().startswith(("{", "[")) else raw
    return result
