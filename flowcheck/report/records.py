"""The record every report is rendered from: one checked flow, and a run's collection of them.

A ``CheckedFlow`` carries the three views of one path -- what its author *expected*, what the
policy *model* predicts (with its reasons), and what the live cluster *observed* (with the Hubble
flows as evidence) -- so a truth table, a Markdown summary, an HTML page and a baseline are all
projections of the same data. ``matrix.json`` is a ``MatrixReport`` serialised; its shape is a
contract (baselines are diffed across Cilium upgrades), so ``to_json``/``from_json`` are explicit
and ``from_json`` names the field that is wrong in a hand-edited or truncated file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowcheck.errors import InputError
from flowcheck.verdict import Verdict

MATRIX_FORMAT_VERSION = 1


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
    ``observed_detail`` says why). ``l7_passes`` is set when the path is allowed only through the L7
    proxy: what passes there (``GET /api/.* only``); the service map labels the edge with it.

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
    source_node: str = ""
    destination_node: str = ""
    placement: str = ""
    probed_via: str = ""
    evidence_state: str = ""

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
        """The author's intent and the model disagree (fails offline, in every pull request)."""
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

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.source,
            "to": self.destination,
            "protocol": self.protocol,
            "port": self.port,
            "request": self.request,
            "expected": None if self.expected is None else self.expected.value,
            "model": self.model.value,
            "model_reasons": list(self.model_reasons),
            "observed": None if self.observed is None else self.observed.value,
            "observed_detail": self.observed_detail,
            "attempts": self.attempts,
            "evidence": list(self.evidence),
            "test": self.test,
        }
        if self.l7_passes is not None:  # optional: files without it read as before
            out["l7_passes"] = self.l7_passes
        for name in _PROBE_FIELDS:  # optional, live runs only
            value = getattr(self, name)
            if value:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Any, *, path: str = "<memory>", where: str = "") -> CheckedFlow:
        """Parse one record; ``where`` is its position in the file (e.g. ``flows[3]``) for errors."""
        reader = FieldReader(path, where)
        obj = reader.mapping(data, "")
        return cls(
            source=reader.string(obj, "from"),
            destination=reader.string(obj, "to"),
            protocol=reader.string(obj, "protocol"),
            port=reader.optional_int(obj, "port"),
            model=reader.verdict(obj, "model"),
            request=reader.optional_string(obj, "request"),
            expected=reader.optional_verdict(obj, "expected"),
            model_reasons=reader.strings(obj, "model_reasons"),
            observed=reader.optional_verdict(obj, "observed"),
            observed_detail=reader.optional_string(obj, "observed_detail") or "",
            attempts=reader.optional_int(obj, "attempts") or 0,
            evidence=reader.strings(obj, "evidence"),
            test=reader.optional_string(obj, "test") or "",
            l7_passes=reader.optional_string(obj, "l7_passes"),
            **{name: reader.optional_string(obj, name) or "" for name in _PROBE_FIELDS},
        )


_PROBE_FIELDS = ("source_node", "destination_node", "placement", "probed_via", "evidence_state")


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
            "format": MATRIX_FORMAT_VERSION,
            "metadata": dict(self.metadata),
            "flows": [f.to_json() for f in self.flows],
        }

    @classmethod
    def from_json(cls, data: Any, *, path: str = "<memory>") -> MatrixReport:
        reader = FieldReader(path, "")
        obj = reader.mapping(data, "")
        version = obj.get("format")
        if version != MATRIX_FORMAT_VERSION:
            raise ReportFileError(path, "format", f"expected {MATRIX_FORMAT_VERSION}, got {version!r}")
        metadata = reader.mapping(obj.get("metadata", {}), "metadata")
        flows = obj.get("flows")
        if not isinstance(flows, list):
            raise ReportFileError(path, "flows", "expected a list of flow records")
        return cls(
            flows=tuple(CheckedFlow.from_json(item, path=path, where=f"flows[{i}]") for i, item in enumerate(flows)),
            metadata={str(k): str(v) for k, v in metadata.items()},
        )


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

    def _field(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where and name else (self.where or name)

    def mapping(self, value: Any, name: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ReportFileError(self.path, self._field(name), f"expected an object, got {type(value).__name__}")
        return value

    def string(self, obj: Mapping[str, Any], name: str) -> str:
        value = obj.get(name)
        if not isinstance(value, str) or not value:
            raise ReportFileError(self.path, self._field(name), f"expected a non-empty string, got {value!r}")
        return value

    def optional_string(self, obj: Mapping[str, Any], name: str) -> str | None:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise ReportFileError(self.path, self._field(name), f"expected a string, got {value!r}")
        return value

    def optional_int(self, obj: Mapping[str, Any], name: str) -> int | None:
        value = obj.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ReportFileError(self.path, self._field(name), f"expected an integer, got {value!r}")
        return value

    def strings(self, obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
        value = obj.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ReportFileError(self.path, self._field(name), "expected a list of strings")
        return tuple(value)

    def verdict(self, obj: Mapping[str, Any], name: str) -> Verdict:
        value = obj.get(name)
        if not isinstance(value, str):
            raise ReportFileError(self.path, self._field(name), f"expected a verdict name, got {value!r}")
        try:
            return Verdict.parse(value)
        except ValueError as exc:
            raise ReportFileError(self.path, self._field(name), str(exc)) from exc

    def optional_verdict(self, obj: Mapping[str, Any], name: str) -> Verdict | None:
        return None if obj.get(name) is None else self.verdict(obj, name)
