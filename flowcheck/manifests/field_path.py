"""Field paths as every error message writes them: ``spec.ingress[0].toPorts[0].ports[0].port``."""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce


def join(path: str, part: str | int) -> str:
    """``join("spec", "ingress")`` -> ``spec.ingress``; ``join("spec.ingress", 0)`` -> ``spec.ingress[0]``."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def format_field_path(parts: Iterable[str | int]) -> str:
    """``['spec', 'ingress', 0, 'toPorts']`` -> ``spec.ingress[0].toPorts``."""
    return reduce(join, parts, "")
