"""Kubernetes resource quantities as numbers (no other imports: the scaffolder uses them too)."""

from __future__ import annotations

import re
from decimal import Decimal

_MEMORY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def cpu(quantity: str | int | float) -> Decimal:
    """Cores in a CPU quantity (``250m`` -> 0.25)."""
    text = str(quantity)
    return Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)


def memory(quantity: str | int) -> int:
    """Bytes in a memory quantity (``256Mi``)."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(quantity))
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    number, unit = match.groups()
    return int(Decimal(number) * _MEMORY.get(unit, 1))
