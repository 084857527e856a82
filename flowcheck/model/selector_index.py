"""Which identities a label selector matches, worked out once per distinct requirement and selector.

A policy set names the same few selectors again and again -- every policy of a namespace carries
that namespace's requirement, many peers say ``{tier: web}`` -- and a topology has a few hundred
identities. Evaluating every selector against every identity (policies x peers x identities) was
most of the time of building a model for 500 workloads and 200 policies. Here each distinct
``Requirement`` is evaluated once per identity, and a selector's identities are the intersection
of its requirements' (a selector is their conjunction: ``LabelSelector.matches``), so the answer
is the same as asking ``selector.matches(identity.labels)`` of each identity.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowcheck.model.identity import Identity
from flowcheck.model.selectors import LabelSelector, Requirement


class SelectorIndex:
    """``matching(selector)``: the indices of the identities (of the sequence given) the selector matches."""

    __slots__ = ("_all", "_identities", "_requirements", "_selectors")

    def __init__(self, identities: Sequence[Identity]) -> None:
        self._identities = identities
        self._all = frozenset(range(len(identities)))
        self._requirements: dict[Requirement, frozenset[int]] = {}
        self._selectors: dict[LabelSelector, frozenset[int]] = {}

    def matching(self, selector: LabelSelector) -> frozenset[int]:
        found = self._selectors.get(selector)
        if found is None:
            found = self._all
            for requirement in selector.requirements:
                if not found:
                    break
                found = found & self._requirement(requirement)
            self._selectors[selector] = found
        return found

    def _requirement(self, requirement: Requirement) -> frozenset[int]:
        found = self._requirements.get(requirement)
        if found is None:
            found = self._requirements[requirement] = frozenset(
                i for i, identity in enumerate(self._identities) if requirement.matches(identity.labels))
        return found
