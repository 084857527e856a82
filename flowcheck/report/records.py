"""The record every report is rendered from: one checked flow, and a run's collection of them.

A ``CheckedFlow`` carries the three views of one path -- what its author *expected*, what the
policy *model* predicts (with its reasons), and what the live cluster *observed* (with the Hubble
flows as evidence) -- so a truth table, a Markdown summary, an HTML page and a baseline are all
projections of the same data. ``matrix.json`` is a ``MatrixReport`` serialised; its shape is a
contract (baselines are diffed across Cilium upgrades), so ``to_json``/``from_json`` are explicit
and ``from_json`` names the field that is wrong in a hand-edited or truncated file.

``matrix.json`` format 2 writes each record as a decided flow (``flowcheck.model.decided_flow``:
the flow, the model's verdict and reasons, who decided, the policies and rules, what passes the L7
proxy) plus what only a run knows: ``request`` (the L7 request as the table's columns name it),
``expected``, ``observed``, ``observed_detail``, ``attempts``, ``evidence`` and ``test``. Format 1
files (``model``/``model_reasons`` instead of ``verdict``/``reasons``) are still read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowcheck.errors import InputError
from flowcheck.model.decided_flow import FLOW_KEYS, DecisionFacts, L7Passes, document_header
from flowcheck.model.decision import Decision
from flowcheck.model.flows import Flow, parse_endpoint, parse_flow
from flowcheck.verdict import Verdict

MATRIX_FORMAT_VERSION = 2
MATRIX_FORMATS = (1, 2)
"""The ``matrix.json`` formats this version reads (it writes the last)."""
MATRIX_KIND = "matrix"


def port_label(protocol: str, port: int | None) -> str:
    """``:8080/TCP``, or ``/ICMP`` for a flow without a port."""
    return f":{port}/{protocol}" if port is not None else f"/{protocol}"


def column_label(destination: str, protocol: str, port: int | None, request: str | None) -> str:
    """How every report names a destination: ``default/my-api:8080/TCP POST /``."""
    where = destination + port_label(protocol, port)
    return f"{where} {request}" if request else where


class ReportFileError(InputError):
    """A matrix.json or baseline file is malformed (names the file and the field)."""

    def __init__(self, path: str, field: str, message: str) -> None:
        self.path = path
        self.field = field
        self.message = message
        super().__init__(f"{path}, field {field}: {message}" if field else f"{path}: {message}")


@dataclass(frozen=True, slots=True)
class CheckedFlow:
    """One path: source -> destination on protocol/port (+ an optional L7 request), three views.

    ``expected`` is None when nobody stated an intent (a plain model plan); ``observed`` is None when
    the flow was not probed (offline runs, or a flow the live cluster cannot probe -- then
    ``observed_detail`` says why). ``l7_passes`` is set when the path goes through the L7 proxy: what
    passes there (``GET``, ``dns *``); truth-table cells and map edges say it. ``flow`` and ``facts``
    are the model's flow and the structured part of its decision (``decided_record`` fills all three
    from a ``Decision``); a record built by hand has neither.

    Live records also say where the path was probed: ``probed_via`` (the probe pods, ``source ->
    destination``; one pod may stand for several workloads), their nodes and ``placement``
    (``same-node``/``cross-node``; a path probed both ways has one record for each), and
    ``evidence_state`` -- what Hubble's flows said about the observation: ``confirmed``, ``none`` (no
    evidence), ``contradicted`` (then ``observed`` is ``error``); empty when the run had no evidence
    source. All optional: files without them read as before.
    """

    source: str
    destination: str
    protocol: str
    port: int | None
    model: Verdict
    request: str | None = None
    expected: Verdict | None = None
    model_reasons: tuple[str, ...] = ()
    observed: Verdict | None = None
    observed_detail: str = ""
    attempts: int = 0
    evidence: tuple[str, ...] = ()
    test: str = ""
    l7_passes: str | None = None
    flow: Flow | None = field(default=None, compare=False)  # the same path as the fields above, as the model has it
    facts: DecisionFacts | None = None
    source_node: str = ""
    destination_node: str = ""
    placement: str = ""
    probed_via: str = ""
    evidence_state: str = ""
    live_only: bool = False  # the author said only a cluster settles it: a model `unknown` is no mismatch

    @property
    def key(self) -> tuple[str, str, str, int | None, str]:
        """Identity of the path, stable across runs (what baselines compare on)."""
        return (self.source, self.destination, self.protocol, self.port, self.request or "")

    @property
    def column(self) -> str:
        """Truth-table column label: ``default/my-api:8080/TCP`` (+ `` POST /`` for L7 requests)."""
        return column_label(self.destination, self.protocol, self.port, self.request)

    @property
    def outcome(self) -> Verdict:
        """The verdict a table shows: what was observed when probed, else what the model predicts."""
        return self.observed if self.observed is not None else self.model

    @property
    def intent_mismatch(self) -> bool:
        """The author's intent and the model disagree (fails offline, in every pull request) -- except on a
        live-only path the model cannot decide, which awaits a cluster instead."""
        if self.live_only and self.model is Verdict.UNKNOWN:
            return False
        return self.expected is not None and self.expected != self.model

    @property
    def live_mismatch(self) -> bool:
        """The cluster did something other than what was expected (or, with no intent, modelled)."""
        if self.observed is None:
            return False
        reference = self.expected if self.expected is not None else self.model
        return self.observed != reference

    @property
    def mismatch(self) -> bool:
        return self.intent_mismatch or self.live_mismatch

    @property
    def is_self(self) -> bool:
        """A workload reaching its own IP: no policy applies (``decided_by`` self), so tables show it as such."""
        if self.facts is not None and self.facts.decided_by is not None:
            return self.facts.decided_by == "self"
        return self.source == self.destination and "/" in self.source

    def to_json(self) -> dict[str, Any]:
        """This record as ``matrix.json`` format 2 writes it: a decided flow plus what the run knows."""
        flow = self.flow
        if flow is not None and (flow.source.describe(), flow.destination.describe()) == (self.source,
                                                                                         self.destination):
            out = flow.to_json()
        else:  # a record built by hand: its ends as the text it names them by
            out = {"from": self.source, "to": self.destination, "protocol": self.protocol}
            if self.port is not None:
                out["port"] = self.port
        out["verdict"] = self.model.value
        out["reasons"] = list(self.model_reasons)
        facts = self.facts or DecisionFacts()
        if facts.l7 is None and self.l7_passes is not None:
            facts = DecisionFacts(facts.decided_by, facts.policies, facts.rules, L7Passes(self.l7_passes))
        out.update(facts.to_json())
        out.update({
            "request": self.request,
            "expected": None if self.expected is None else self.expected.value,
            "observed": None if self.observed is None else self.observed.value,
            "observed_detail": self.observed_detail,
            "attempts": self.attempts,
            "evidence": list(self.evidence),
            "test": self.test,
        })
        for name in _PROBE_FIELDS:  # optional, live runs only
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.live_only:
            out["live_only"] = True
        return out

    @classmethod
    def from_json(cls, data: Any, *, path: str = "<memory>", where: str = "", version: int = MATRIX_FORMAT_VERSION
                  ) -> CheckedFlow:
        """Parse one record of a format-``version`` file; ``where`` is its position (``flows[3]``) for errors."""
        if version == 1:
            return cls._from_json_v1(data, path, where)
        reader = FieldReader(path, where)
        obj = reader.mapping(data, "")

        def fail(field_: str, message: str) -> ReportFileError:
            return ReportFileError(path, reader.field(field_), message)

        source = _endpoint_text(obj.get("from"), "from", fail)
        destination = _endpoint_text(obj.get("to"), "to", fail)
        flow = None
        if all(isinstance(obj.get(end), dict) or "/" in str(obj.get(end)) for end in ("from", "to")):
            flow = parse_flow({k: obj[k] for k in FLOW_KEYS if obj.get(k) is not None}, "", fail)
        facts: DecisionFacts | None = DecisionFacts.from_json(obj, "", fail)
        l7 = facts.l7 if facts is not None else None
        if facts == DecisionFacts(l7=l7) and (l7 is None or not l7.filters):
            facts = None  # nothing but what l7_passes holds
        return cls._read(reader, obj, source, destination, model="verdict", reasons="reasons",
                         l7_passes=l7.passes if l7 is not None else None, flow=flow, facts=facts)

    @classmethod
    def _from_json_v1(cls, data: Any, path: str, where: str) -> CheckedFlow:
        reader = FieldReader(path, where)
        obj = reader.mapping(data, "")
        return cls._read(reader, obj, reader.string(obj, "from"), reader.string(obj, "to"), model="model",
                         reasons="model_reasons", l7_passes=reader.optional_string(obj, "l7_passes"))

    @classmethod
    def _read(cls, reader: FieldReader, obj: Mapping[str, Any], source: str, destination: str, *, model: str,
              reasons: str, **extra: Any) -> CheckedFlow:
        """The fields both formats share; ``model``/``reasons`` name the keys of the model's verdict and reasons."""
        return cls(
            source=source,
            destination=destination,
            protocol=reader.string(obj, "protocol"),
            port=reader.optional_int(obj, "port"),
            model=reader.verdict(obj, model),
            request=reader.optional_string(obj, "request"),
            expected=reader.optional_verdict(obj, "expected"),
            model_reasons=reader.strings(obj, reasons),
            observed=reader.optional_verdict(obj, "observed"),
            observed_detail=reader.optional_string(obj, "observed_detail") or "",
            attempts=reader.optional_int(obj, "attempts") or 0,
            evidence=reader.strings(obj, "evidence"),
            test=reader.optional_string(obj, "test") or "",
            source_node=reader.optional_string(obj, "source_node") or "",
            destination_node=reader.optional_string(obj, "destination_node") or "",
            placement=reader.optional_string(obj, "placement") or "",
            probed_via=reader.optional_string(obj, "probed_via") or "",
            evidence_state=reader.optional_string(obj, "evidence_state") or "",
            live_only=reader.optional_bool(obj, "live_only"),
            **extra,
        )


_PROBE_FIELDS = ("source_node", "destination_node", "placement", "probed_via", "evidence_state")


def _endpoint_text(raw: Any, name: str, fail: Any) -> str:
    """A record's end as text: a string as written, or a flows-file endpoint object as ``Flow`` names it."""
    if isinstance(raw, str) and raw:
        return raw
    if isinstance(raw, dict):
        return parse_endpoint(raw, name, fail).describe()
    raise fail(name, f"expected a non-empty string or an endpoint object, got {raw!r}")


def decision_fields(flow: Flow, decision: Decision) -> dict[str, Any]:
    """The fields of a ``CheckedFlow`` that come from the model's decision beyond its verdict and reasons:
    ``flow``, ``facts`` and ``l7_passes`` (what passes the L7 proxy)."""
    facts = DecisionFacts.of(decision)
    return {"flow": flow, "facts": facts, "l7_passes": facts.l7.passes if facts.l7 is not None else None}


def decided_record(flow: Flow, decision: Decision, **run: Any) -> CheckedFlow:
    """The record of the model's decision for ``flow`` (a plan, a diff), plus whatever ``run`` adds."""
    return CheckedFlow(source=flow.source.describe(), destination=flow.destination.describe(),
                       protocol=flow.protocol, port=flow.port, model=decision.verdict,
                       model_reasons=decision.reasons, **decision_fields(flow, decision), **run)


@dataclass(frozen=True, slots=True)
class MatrixReport:
    """Every flow a run checked, with what the run was (``matrix.json``)."""

    flows: tuple[CheckedFlow, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def mismatches(self) -> tuple[CheckedFlow, ...]:
        return tuple(f for f in self.flows if f.mismatch)

    def to_json(self) -> dict[str, Any]:
        return {
            **document_header(MATRIX_KIND),
            "metadata": dict(self.metadata),
            "flows": [f.to_json() for f in self.flows],
        }

    @classmethod
    def from_json(cls, data: Any, *, path: str = "<memory>") -> MatrixReport:
        reader = FieldReader(path, "")
        obj = reader.mapping(data, "")
        version = obj.get("format")
        if version not in MATRIX_FORMATS or isinstance(version, bool):
            raise ReportFileError(path, "format", f"expected one of {', '.join(map(str, MATRIX_FORMATS))}, "
                                                  f"got {version!r}")
        metadata = reader.mapping(obj.get("metadata", {}), "metadata")
        flows = obj.get("flows")
        if not isinstance(flows, list):
            raise ReportFileError(path, "flows", "expected a list of flow records")
        return cls(
            flows=tuple(CheckedFlow.from_json(item, path=path, where=f"flows[{i}]", version=version)
                        for i, item in enumerate(flows)),
            metadata={str(k): str(v) for k, v in metadata.items()},
        )


PLAN_KIND = "plan"


def report_from_json(data: Any, *, path: str = "<memory>") -> MatrixReport:
    """Any flowcheck document made of flows: ``matrix.json`` (format 1 or 2) or ``flowcheck plan --format json``
    output (``{"results": [...]}``, or version 2 with ``"kind": "flowcheck-plan"``), as a report.

    A plan's flows are the model's verdicts, never probed: a baseline of a plan compares the model's
    predictions, as one of an offline run does.
    """
    if not isinstance(data, dict):
        raise ReportFileError(path, "", f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    if kind is None and "results" in data and "format" not in data:
        return _plan_v1(data, path)
    if kind == document_header(PLAN_KIND)["kind"]:
        if data.get("format") != 2:
            raise ReportFileError(path, "format", f"expected 2, got {data.get('format')!r}")
        flows = data.get("flows")
        if not isinstance(flows, list):
            raise ReportFileError(path, "flows", "expected a list of decided flows")
        metadata = {key: str(data[key]) for key in ("semantics", "topology") if isinstance(data.get(key), str)}
        return MatrixReport(tuple(CheckedFlow.from_json(item, path=path, where=f"flows[{i}]", version=2)
                                  for i, item in enumerate(flows)), metadata)
    if kind not in (None, document_header(MATRIX_KIND)["kind"]):
        raise ReportFileError(path, "kind", f"expected a flowcheck report or plan, got {kind!r}")
    return MatrixReport.from_json(data, path=path)


def _plan_v1(data: Mapping[str, Any], path: str) -> MatrixReport:
    results = data.get("results")
    if not isinstance(results, list):
        raise ReportFileError(path, "results", "expected a list of planned flows")
    flows = []
    for i, item in enumerate(results):
        reader = FieldReader(path, f"results[{i}]")
        obj = reader.mapping(item, "")
        flows.append(CheckedFlow(source=reader.string(obj, "from"), destination=reader.string(obj, "to"),
                                 protocol=reader.string(obj, "protocol"), port=reader.optional_int(obj, "port"),
                                 model=reader.verdict(obj, "verdict"), model_reasons=reader.strings(obj, "reasons")))
    return MatrixReport(tuple(flows))


def merge_reports(reports: Sequence[MatrixReport], metadata: Mapping[str, str] | None = None) -> MatrixReport:
    """Concatenate reports (e.g. from pytest-xdist workers), keeping the given run metadata."""
    flows = tuple(flow for report in reports for flow in report.flows)
    return MatrixReport(flows=flows, metadata=dict(metadata or {}))


class FieldReader:
    """Typed field access with errors that name the file and the field (``flows[3].to``).

    ``where`` is the position of the object being read; a field name is appended to it.
    """

    def __init__(self, path: str, where: str) -> None:
        self.path = path
        self.where = where

    def field(self, name: str) -> str:
        """``name`` inside the object being read (``flows[3].to``)."""
        return f"{self.where}.{name}" if self.where and name else (self.where or name)

    def mapping(self, value: Any, name: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ReportFileError(self.path, self.field(name), f"expected an object, got {type(value).__name__}")
        return value

    def string(self, obj: Mapping[str, Any], name: str) -> str:
        value = obj.get(name)
        if not isinstance(value, str) or not value:
            raise ReportFileError(self.path, self.field(name), f"expected a non-empty string, got {value!r}")
        return value

    def optional_string(self, obj: Mapping[str, Any], name: str) -> str | None:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise ReportFileError(self.path, self.field(name), f"expected a string, got {value!r}")
        return value

    def optional_int(self, obj: Mapping[str, Any], name: str) -> int | None:
        value = obj.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ReportFileError(self.path, self.field(name), f"expected an integer, got {value!r}")
        return value

    def optional_bool(self, obj: Mapping[str, Any], name: str) -> bool:
        value = obj.get(name, False)
        if not isinstance(value, bool):
            raise ReportFileError(self.path, self.field(name), f"expected true or false, got {value!r}")
        return value

    def strings(self, obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
        value = obj.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ReportFileError(self.path, self.field(name), "expected a list of strings")
        return tuple(value)

    def verdict(self, obj: Mapping[str, Any], name: str) -> Verdict:
        value = obj.get(name)
        if not isinstance(value, str):
            raise ReportFileError(self.path, self.field(name), f"expected a verdict name, got {value!r}")
        try:
            return Verdict.parse(value)
        except ValueError as exc:
            raise ReportFileError(self.path, self.field(name), str(exc)) from exc

    def optional_verdict(self, obj: Mapping[str, Any], name: str) -> Verdict | None:
        return None if obj.get(name) is None else self.verdict(obj, name)
