"""Typed probe specs → the agent's plan, and the agent's output → typed results.
(Contract: docs/contracts.md, "The probe agent".)

The harness's probing pipeline is::

    specs = [TcpProbe(...), HttpProbe(...), ...]          # what to probe from one source workload
    plan = build_plan(specs, timeout_s=2.0, concurrency=256)
    done = executor.run_agent(source, plan, timeout_s=agent_budget_s(plan))
    results = parse_results(plan, done)                    # {probe id: ProbeResult}, one per spec
    verdicts = {pid: classify(r) for pid, r in results.items()}   # flowcheck.probe.classify

The specs are checked here with the same rules the agent applies, so a plan built from them is never
rejected by the agent. ``parse_results`` is where "never a crash, never a silent pass" is enforced for
the agent's side of the seam: whatever the agent printed -- nothing, garbage, half a run, the same id
twice -- every planned probe comes back as exactly one ``ProbeResult``, and any probe the agent did not
cleanly report is an ``error`` result whose detail says why (exit status, stderr tail, bad lines).

Lines the agent did print validly are kept even when it later died (non-zero exit, killed by the
executor's timeout): each line is written only once its probe has finished, so it is a complete
observation; only the unreported probes become errors.
"""

from __future__ import annotations

import enum
import json
import math
import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flowcheck.probe.executor import CompletedExec
from flowcheck.vocabulary import DNS_PORT, HTTP_TOKEN

DEFAULT_PROBE_TIMEOUT_S = 2.0
DEFAULT_CONCURRENCY = 256
MAX_CONCURRENCY = 10000  # the agent's own cap
MAX_TIMEOUT_S = 3600.0  # the agent's own cap
AGENT_DEADLINE_MARGIN_S = 2.0  # the agent adds this to its default run deadline (agent.DEADLINE_MARGIN_S)
AGENT_STARTUP_ALLOWANCE_S = 10.0  # exec set-up + interpreter start on a busy node, on top of the deadline
STDERR_TAIL_CHARS = 500
DNS_QTYPES = frozenset({"A", "AAAA", "TXT", "CNAME", "MX", "NS", "PTR", "SRV"})


class ProbeKind(enum.StrEnum):
    TCP = "tcp"
    HTTP = "http"
    UDP = "udp"
    DNS = "dns"


class Outcome(enum.StrEnum):
    """The agent's raw outcome of one probe (docs/contracts.md, "The probe agent"); ``classify``
    turns it into a verdict."""

    OK = "ok"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    ERROR = "error"


def _check_common(probe_id: str, timeout_s: float | None) -> None:
    if not probe_id:
        raise ValueError("a probe id must be a non-empty string")
    if timeout_s is not None and not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(f"probe {probe_id}: timeout_s must be in (0, {MAX_TIMEOUT_S}], got {timeout_s}")


def _check_target(probe_id: str, host: str, port: int) -> None:
    if not host:
        raise ValueError(f"probe {probe_id}: host must not be empty")
    if not 1 <= port <= 65535:
        raise ValueError(f"probe {probe_id}: port must be in [1, 65535], got {port}")


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """Connect to host:port. ``timeout_s`` overrides the plan's timeout for this probe."""

    id: str
    host: str
    port: int
    timeout_s: float | None = None
    kind: ClassVar[ProbeKind] = ProbeKind.TCP

    def __post_init__(self) -> None:
        _check_common(self.id, self.timeout_s)
        _check_target(self.id, self.host, self.port)

    def to_plan(self) -> dict[str, Any]:
        return _with_timeout({"id": self.id, "kind": "tcp", "host": self.host, "port": self.port}, self.timeout_s)


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """One HTTP/1.1 request. ``headers`` are sent as given (a ``Host`` header here replaces the default)."""

    id: str
    host: str
    port: int
    method: str = "GET"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    timeout_s: float | None = None
    kind: ClassVar[ProbeKind] = ProbeKind.HTTP

    def __post_init__(self) -> None:
        _check_common(self.id, self.timeout_s)
        _check_target(self.id, self.host, self.port)
        if not HTTP_TOKEN.match(self.method):
            raise ValueError(f"probe {self.id}: method {self.method!r} is not an HTTP token")
        if not self.path or any(ch.isspace() or ch == "\0" for ch in self.path):
            raise ValueError(f"probe {self.id}: path {self.path!r} must be non-empty without whitespace")
        for name, value in self.headers.items():
            if not HTTP_TOKEN.match(name):
                raise ValueError(f"probe {self.id}: header name {name!r} is not an HTTP token")
            if any(ch in value for ch in "\r\n\0"):
                raise ValueError(f"probe {self.id}: header {name} value must not contain CR, LF or NUL")
        object.__setattr__(self, "headers", dict(self.headers))  # a private copy: the spec stays as built

    def to_plan(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "kind": "http", "host": self.host, "port": self.port,
                                 "method": self.method, "path": self.path, "headers": dict(self.headers)}
        if self.body:
            entry["body"] = self.body
        return _with_timeout(entry, self.timeout_s)


@dataclass(frozen=True, slots=True)
class UdpProbe:
    """Send ``payload`` to host:port and wait for a datagram back (the probe server echoes)."""

    id: str
    host: str
    port: int
    payload: str = "ping"
    timeout_s: float | None = None
    kind: ClassVar[ProbeKind] = ProbeKind.UDP

    def __post_init__(self) -> None:
        _check_common(self.id, self.timeout_s)
        _check_target(self.id, self.host, self.port)

    def to_plan(self) -> dict[str, Any]:
        entry = {"id": self.id, "kind": "udp", "host": self.host, "port": self.port, "payload": self.payload}
        return _with_timeout(entry, self.timeout_s)


@dataclass(frozen=True, slots=True)
class DnsProbe:
    """Ask ``server`` for ``name``/``qtype`` over ``transport`` (udp or tcp)."""

    id: str
    server: str
    name: str
    qtype: str = "A"
    transport: str = "udp"
    port: int = DNS_PORT
    timeout_s: float | None = None
    kind: ClassVar[ProbeKind] = ProbeKind.DNS

    def __post_init__(self) -> None:
        _check_common(self.id, self.timeout_s)
        _check_target(self.id, self.server, self.port)
        if self.qtype not in DNS_QTYPES:
            raise ValueError(f"probe {self.id}: qtype {self.qtype!r} is not one of {', '.join(sorted(DNS_QTYPES))}")
        if self.transport not in ("udp", "tcp"):
            raise ValueError(f"probe {self.id}: transport must be 'udp' or 'tcp', got {self.transport!r}")
        labels = self.name.rstrip(".").split(".")
        if not self.name.isascii() or any(not 1 <= len(label) <= 63 for label in labels) or len(self.name) > 253:
            raise ValueError(f"probe {self.id}: {self.name!r} is not a valid ASCII DNS name")

    def to_plan(self) -> dict[str, Any]:
        entry = {"id": self.id, "kind": "dns", "server": self.server, "port": self.port, "name": self.name,
                 "qtype": self.qtype, "transport": self.transport}
        return _with_timeout(entry, self.timeout_s)


ProbeSpec = TcpProbe | HttpProbe | UdpProbe | DnsProbe


def _with_timeout(entry: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
    if timeout_s is not None:
        entry["timeout"] = timeout_s
    return entry


def build_plan(
    probes: Iterable[ProbeSpec],
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    concurrency: int = DEFAULT_CONCURRENCY,
    *,
    deadline_s: float | None = None,
) -> str:
    """The JSON plan the agent reads on stdin (docs/contracts.md, "The probe agent").
    Raises ``ValueError`` on duplicate ids or bad limits.

    ``deadline_s`` bounds the agent's whole run; left out, the agent uses the longest timeout times the
    number of concurrency waves plus a margin (``agent_budget_s`` knows the same rule).
    """
    entries = [probe.to_plan() for probe in probes]
    ids = [entry["id"] for entry in entries]
    if len(set(ids)) != len(ids):
        duplicates = sorted({pid for pid in ids if ids.count(pid) > 1})
        raise ValueError(f"duplicate probe ids: {', '.join(duplicates)}")
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout_s must be in (0, {MAX_TIMEOUT_S}], got {timeout_s}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be in [1, {MAX_CONCURRENCY}], got {concurrency}")
    plan: dict[str, Any] = {"timeout": timeout_s, "concurrency": concurrency, "probes": entries}
    if deadline_s is not None:
        if not 0 < deadline_s <= MAX_TIMEOUT_S:
            raise ValueError(f"deadline_s must be in (0, {MAX_TIMEOUT_S}], got {deadline_s}")
        plan["deadline"] = deadline_s
    return json.dumps(plan, separators=(",", ":"))


def agent_budget_s(plan: str) -> float:
    """How long an executor should let the agent run for this plan before killing it.

    The agent's own run deadline (explicit, or its default: longest timeout x concurrency waves + margin)
    plus an allowance for starting the exec and the interpreter, so a healthy agent always finishes and
    reports before the executor gives up on it.
    """
    document = json.loads(plan)
    if "deadline" in document:
        return float(document["deadline"]) + AGENT_STARTUP_ALLOWANCE_S
    probes = document["probes"]
    longest = max([float(document["timeout"])] + [float(p["timeout"]) for p in probes if "timeout" in p])
    waves = max(1, math.ceil(len(probes) / int(document["concurrency"])))
    return longest * waves + AGENT_DEADLINE_MARGIN_S + AGENT_STARTUP_ALLOWANCE_S


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    name: str
    type: str
    ttl: int
    data: str


@dataclass(frozen=True, slots=True)
class HttpEcho:
    """What a flowcheck probe server says it received (docs/contracts.md, "The probe server"):
    proof of method, path and headers."""

    method: str
    path: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's raw result, typed. ``kind`` comes from the plan (the agent's echo is only checked).

    Field meanings are the agent's (docs/contracts.md, "The probe agent"; ``agent.py`` docstring);
    ``raw`` keeps the agent's line
    as evidence for reports, empty when the result was made up here because the agent gave none.
    ``saddr``/``sport`` are the local address and port the probe's socket used (None when the agent sent
    nothing, or is older than these fields): with the destination and protocol, the 5-tuple that picks
    this probe's packets out of Hubble's flows.
    """

    id: str
    kind: ProbeKind
    outcome: Outcome
    elapsed_s: float | None = None
    detail: str = ""
    phase: str | None = None
    connected: bool | None = None
    errno: str | None = None
    status: int | None = None
    reason: str | None = None
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    server: str | None = None
    echo: HttpEcho | None = None
    reply: str | None = None
    rcode: str | None = None
    answers: tuple[DnsAnswer, ...] = ()
    truncated: bool | None = None
    transport: str | None = None
    saddr: str | None = None
    sport: int | None = None
    raw: str = ""


_OUTCOMES = frozenset(member.value for member in Outcome)


class _Unreadable(ValueError):
    """An agent line that is JSON but not a well-formed result."""


def _opt(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, typ) or (typ in (int, float, (int, float)) and isinstance(value, bool)):
        raise _Unreadable(f"field {key!r} has the wrong type: {value!r}")
    return value


def _str_map(value: Any, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _Unreadable(f"field {key!r} must be an object of strings")
    return dict(value)


def result_from_agent(kind: ProbeKind, obj: Mapping[str, Any], raw: str = "") -> ProbeResult:
    """Type one agent result object; raises ``ValueError`` when it is not a well-formed result."""
    probe_id = obj.get("id")
    if not isinstance(probe_id, str):
        raise _Unreadable("no string 'id'")
    reported_kind = obj.get("kind")
    if reported_kind is not None and reported_kind != kind.value:
        raise _Unreadable(f"the agent reported kind {reported_kind!r} for a {kind.value} probe")
    raw_outcome = obj.get("outcome")
    if not isinstance(raw_outcome, str) or raw_outcome not in _OUTCOMES:
        raise _Unreadable(f"unknown outcome {raw_outcome!r}")
    outcome = Outcome(raw_outcome)
    echo = None
    echo_obj = obj.get("echo")
    if echo_obj is not None:
        if not isinstance(echo_obj, dict):
            raise _Unreadable("field 'echo' must be an object")
        echo = HttpEcho(method=str(echo_obj.get("method", "")), path=str(echo_obj.get("path", "")),
                        headers=_str_map(echo_obj.get("headers"), "echo.headers"))
    answers: list[DnsAnswer] = []
    for item in obj.get("answers") or ():
        if not isinstance(item, dict):
            raise _Unreadable("each DNS answer must be an object")
        ttl = item.get("ttl", 0)
        answers.append(DnsAnswer(name=str(item.get("name", "")), type=str(item.get("type", "")),
                                 ttl=ttl if isinstance(ttl, int) else 0, data=str(item.get("data", ""))))
    elapsed = _opt(obj, "elapsed", (int, float))
    sport = _opt(obj, "sport", int)
    if sport is not None and not 1 <= sport <= 65535:
        raise _Unreadable(f"field 'sport' is not a port number: {sport!r}")
    return ProbeResult(
        id=probe_id,
        kind=kind,
        outcome=outcome,
        elapsed_s=float(elapsed) if elapsed is not None else None,
        detail=_opt(obj, "detail", str) or "",
        phase=_opt(obj, "phase", str),
        connected=_opt(obj, "connected", bool),
        errno=_opt(obj, "errno", str),
        status=_opt(obj, "status", int),
        reason=_opt(obj, "reason", str),
        body=_opt(obj, "body", str),
        headers=_str_map(obj.get("headers"), "headers"),
        server=_opt(obj, "server", str),
        echo=echo,
        reply=_opt(obj, "reply", str),
        rcode=_opt(obj, "rcode", str),
        answers=tuple(answers),
        truncated=_opt(obj, "truncated", bool),
        transport=_opt(obj, "transport", str),
        saddr=_opt(obj, "saddr", str),
        sport=sport,
        raw=raw,
    )


def _planned(plan: str) -> dict[str, ProbeKind]:
    try:
        document = json.loads(plan)
        return {str(entry["id"]): ProbeKind(entry["kind"]) for entry in document["probes"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a plan made by build_plan: {exc}") from None


def _exit_text(returncode: int) -> str:
    if returncode == 0:
        return "the agent exited 0"
    if returncode == 2:
        return "the agent rejected the plan (exit 2)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the agent was killed ({name})"
    return f"the agent exited with status {returncode}"


def parse_results(plan: str | Sequence[ProbeSpec], completed: CompletedExec) -> dict[str, ProbeResult]:
    """One ``ProbeResult`` per planned probe, in plan order, whatever the agent printed.

    ``plan`` is the JSON from ``build_plan`` (or the specs it was built from). Never raises for anything
    the agent did; raises ``ValueError`` only when ``plan`` itself is not a plan.
    """
    planned = {p.id: p.kind for p in plan} if not isinstance(plan, str) else _planned(plan)
    found: dict[str, ProbeResult] = {}
    seen_count: dict[str, int] = {}
    problems: list[str] = []
    for lineno, line in enumerate(completed.stdout.splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            problems.append(f"line {lineno} is not JSON: {text[:80]!r}")
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            problems.append(f"line {lineno} is not a result object: {text[:80]!r}")
            continue
        probe_id = obj["id"]
        if probe_id not in planned:
            problems.append(f"line {lineno} reports an unplanned probe id {probe_id!r}")
            continue
        seen_count[probe_id] = seen_count.get(probe_id, 0) + 1
        if seen_count[probe_id] > 1:
            found[probe_id] = ProbeResult(
                id=probe_id, kind=planned[probe_id], outcome=Outcome.ERROR, phase="report",
                detail=f"the agent reported this probe {seen_count[probe_id]} times; none of them can be trusted",
                raw=text)
            continue
        try:
            found[probe_id] = result_from_agent(planned[probe_id], obj, raw=text)
        except ValueError as exc:
            found[probe_id] = ProbeResult(
                id=probe_id, kind=planned[probe_id], outcome=Outcome.ERROR, phase="report",
                detail=f"the agent's line {lineno} for this probe is unreadable: {exc}", raw=text)
    missing = [pid for pid in planned if pid not in found]
    if missing:
        detail = f"the agent reported no result for this probe; {_exit_text(completed.returncode)}"
        if problems:
            detail += "; bad output: " + "; ".join(problems[:3])
            if len(problems) > 3:
                detail += f" (and {len(problems) - 3} more)"
        tail = completed.stderr.strip()[-STDERR_TAIL_CHARS:]
        if tail:
            detail += f"; stderr: {tail}"
        for pid in missing:
            found[pid] = ProbeResult(id=pid, kind=planned[pid], outcome=Outcome.ERROR, phase="report", detail=detail)
    return {pid: found[pid] for pid in planned}
