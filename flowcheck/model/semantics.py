"""Which rules the model follows: Cilium's (``cilium``, the default) or the NetworkPolicy specification's.

They differ where Cilium deviates from the specification (docs/semantics.md, "Where Cilium and the
NetworkPolicy specification differ"): an ipBlock never selects a pod or node IP under Cilium, and a
NotIn/DoesNotExist namespaceSelector may also match reserved identities under Cilium; named ports
on egress resolve over all pods under Cilium and over the destination under the specification.
"""

from __future__ import annotations

from typing import Literal

from flowcheck.errors import InputError

Semantics = Literal["cilium", "kubernetes"]
SEMANTICS: tuple[Semantics, ...] = ("cilium", "kubernetes")


class SemanticsError(InputError):
    """An unknown ``--semantics`` value."""


def parse_semantics(text: str) -> Semantics:
    """``text`` as a ``Semantics``; ``SemanticsError`` for anything else."""
    if text == "cilium":
        return "cilium"
    if text == "kubernetes":
        return "kubernetes"
    raise SemanticsError(f"unknown semantics {text!r}; expected cilium or kubernetes")
