"""A plan's JSON records, encoded once per decision class and filled in per flow.

A plan of N workloads has N x N records, but only as many distinct decisions as there are pairs of
decision classes (``Model.source_classes``/``destination_classes``): a few thousand for N = 500.
Building a dict per flow and encoding it was most of the time ``flowcheck plan --format json``
spent once the model was fast. Here the record of each (class decision, protocol, port) is built
once -- by the same function that builds every plan record (``record``: what a flow looks like in
JSON is not this module's business) -- for a flow between two stand-in names, encoded once, and
each flow's text is that text with the two names put in.

That is exact only if a record depends on the names by containing them. So the first flow of each
template is also encoded the ordinary way and compared: a record that differs (a record function
that derives something else from a name) turns that template off, and its flows are encoded one
by one. The text is the same either way, as compact JSON (``flowcheck.cli.json_stream``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flowcheck.cli.json_stream import COMPACT_SEPARATORS
from flowcheck.model.engine import ClassDecision, ResolvedEndpoint
from flowcheck.model.flows import Flow, WorkloadEndpoint
from flowcheck.model.matrix import MatrixCell, PlannedFlow

RecordFunction = Callable[[PlannedFlow], Mapping[str, Any]]

# Stand-ins for the names; a NUL never occurs in a workload name (a DNS label), and JSON writes it
# as \u0000, so the encoded stand-in is found only where the name was.
_SOURCE = "\x00flowcheck-source\x00"
_DESTINATION = "\x00flowcheck-destination\x00"

_encode = json.JSONEncoder(separators=COMPACT_SEPARATORS).encode
_ENCODED_SOURCE = _encode(_SOURCE)[1:-1]
_ENCODED_DESTINATION = _encode(_DESTINATION)[1:-1]


class _RecordTemplate:
    """One encoded record with stand-ins; ``fill`` puts two (encoded) names in, the source's once per run."""

    __slots__ = ("_half", "_source", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._source: str | None = None
        self._half = text

    def fill(self, source: str, destination: str) -> str:
        if source is not self._source:
            self._source = source
            self._half = self._text.replace(_ENCODED_SOURCE, source)
        return self._half.replace(_ENCODED_DESTINATION, destination)


def encoded_plan_records(cells: Iterable[MatrixCell], record: RecordFunction) -> Iterator[str]:
    """Each flow's ``record``, as compact JSON text, in the order of ``cells`` (``iter_matrix_classes``)."""
    # (the decision, kept alive so its id stays its own; the template, or None where templating is off)
    templates: dict[tuple[int, str, int, bool], tuple[ClassDecision, _RecordTemplate | None]] = {}
    encoded_names: dict[str, str] = {}
    for source, destination, protocol, port, outcome in cells:
        own = source is destination
        key = (id(outcome), protocol, port, own)
        found = templates.get(key)
        if found is None:
            found = templates[key] = (outcome, _template(source, destination, protocol, port, outcome, record))
        template = found[1]
        if template is None:
            yield _encode(record(_planned(source, destination, protocol, port, outcome)))
            continue
        src = encoded_names.get(source.name)
        if src is None:
            src = encoded_names[source.name] = _encode(source.name)[1:-1]
        dst = encoded_names.get(destination.name)
        if dst is None:
            dst = encoded_names[destination.name] = _encode(destination.name)[1:-1]
        yield template.fill(src, dst)


def _template(source: ResolvedEndpoint, destination: ResolvedEndpoint, protocol: str, port: int,
              outcome: ClassDecision, record: RecordFunction) -> _RecordTemplate | None:
    """The record of the flows like this one with stand-in names -- if it gives this flow's record exactly."""
    stand_in_source = WorkloadEndpoint(_SOURCE)
    stand_in_destination = stand_in_source if source is destination else WorkloadEndpoint(_DESTINATION)
    flow = Flow(stand_in_source, stand_in_destination, protocol, port)
    text = _encode(record(PlannedFlow(flow, outcome.decision(_SOURCE, stand_in_destination.ref))))
    template = _RecordTemplate(text)
    expected = _encode(record(_planned(source, destination, protocol, port, outcome)))
    filled = template.fill(_encode(source.name)[1:-1], _encode(destination.name)[1:-1])
    return template if filled == expected else None


def _planned(source: ResolvedEndpoint, destination: ResolvedEndpoint, protocol: str, port: int,
             outcome: ClassDecision) -> PlannedFlow:
    return PlannedFlow(Flow(source.endpoint, destination.endpoint, protocol, port),
                       outcome.decision(source.name, destination.name))
