"""The probe agent: runs every probe of one plan concurrently inside one source pod.

Shipped into probe pods in a ConfigMap and started as ``python3 agent.py`` (also
``python -m flowcheck.probe.agent``), so it is **standard library only and runs under any Python >= 3.9**
(the probe image is a stock ``python:3-alpine``): no ``match``, no runtime ``X | None``, no 3.10+ APIs.

Why one process per source pod with every probe concurrent inside it: peers (cyclonus, the Kubernetes
e2e netpol suite) start one process per probe, so every dropped flow costs a full timeout *serially per
worker*; here all probes of a source share one exec and a run with any number of drops costs about one
timeout (docs/contracts.md, "The probe agent", DEVELOPERS.md "Fast, honest probing").

Why a small event loop of its own and not asyncio: the agent's start-up is paid once per source pod, all
at once, when a harness probes every source concurrently -- so start-up CPU is the agent's main cost.
Importing ``asyncio`` alone costs more CPU than the rest of the agent's start-up (it pulls in ssl,
concurrent.futures, logging, inspect, ...): with 20 agents starting together on two cores it added ~0.4 s
to a 1 s probe round and missed the benchmark target (``benchmarks/probe_matrix.py``); a thread per probe
avoids the import but costs twice the CPU per probe. So the probes are generators that ``yield`` what
they wait for (a socket to become readable/writable) and one ``select.poll`` loop drives them,
``concurrency`` at a time, each bounded by its own deadline -- cooperative concurrency like asyncio's, on
non-blocking sockets, single-threaded (a thread is used only to resolve a host *name*, which has no
non-blocking API).

The same start-up budget explains the imports: the C modules ``_socket``, ``_json`` and ``select`` are
used directly instead of ``socket.py`` (~11 ms of CPU building its enums), ``json`` (~10 ms, mostly ``re``
compiling its patterns) and ``selectors`` (~4 ms); they offer the same calls (``socket.py`` is a thin
layer over ``_socket``, ``json`` itself parses and escapes with ``_json``). Likewise ``posix`` instead of
``os`` (~1.7 ms under ``-S``, mostly ``_collections_abc``), ``_heapq`` and ``_struct`` instead of the
modules that re-export them, and ``resource`` only when the file limit must be raised: together ~1-2 ms
of a ~14 ms start (``python -X importtime``). Interpreters without ``_json`` (not CPython) fall back to
``json``. ``typing`` is not imported at run time either (annotations are strings; the names exist for
type checkers). Run as a script, the agent also compiles itself on every start (~14 ms more); executors
import it from cached bytecode instead (``flowcheck.probe.launch``), so it starts in little more than the
interpreter's own start-up.

Contract (docs/contracts.md, "The probe agent"): one JSON plan on stdin::

    {"timeout": 2.0, "concurrency": 256, "deadline": 30.0, "probes": [{"id": "1", "kind": "tcp", ...}, ...]}

``timeout`` is per probe (a probe may carry its own), ``concurrency`` bounds how many run at once,
``deadline`` (optional, an extension) bounds the whole run; by default it is the longest timeout times
the number of concurrency "waves" plus a margin. Exactly one JSON object per probe is written on stdout,
one per line, as soon as the probe finishes (the lines of probes that finish together go out in one
write, before the agent waits again), and nothing else ever goes to stdout::

    {"id": "1", "kind": "tcp", "outcome": "ok", "elapsed": 0.003, ...}

Outcomes are raw facts, not verdicts (the library's ``flowcheck.probe.classify`` maps them):

- ``ok``: the peer answered (TCP connected; an HTTP response was read; a UDP datagram came back; a DNS
  answer with the right id and question came back).
- ``timeout``: *nothing* answered before the timeout: no answer to the SYN (tcp, http, dns over tcp),
  no datagram back (udp, dns over udp). This is what a silent policy drop looks like.
- ``refused``: an RST answered the SYN, or an ICMP port unreachable answered the datagram.
- ``unreachable``: no route, or an ICMP host/network unreachable came back (``errno`` says which).
- ``error``: anything else, with ``detail``: a bad probe spec, a name that does not resolve, a
  connection that was established but never produced a (complete, well-formed) answer -- that is a
  stuck or broken server, *not* a drop, so it is never reported as ``timeout``.

Extra fields: ``phase`` (where a failure happened: resolve, connect, request, response, deadline),
``connected`` (stream kinds), ``errno`` (the symbolic errno of a socket error); ``saddr`` and ``sport``
(the local address and port the probe's socket used, for every probe that sent anything -- whatever its
outcome -- so its packets can be matched on the 5-tuple); for http ``status``,
``reason``, ``body`` (first 256 bytes, decoded as UTF-8 with replacement), ``headers`` (response headers,
names lower-cased), ``server`` (the identity a flowcheck probe server reported in its JSON body) and
``echo`` (the method, path and headers that server says it received); for udp ``reply`` and ``server``;
for dns ``rcode`` (by name), ``answers``, ``truncated``, ``authoritative``, ``transport``.

Exit status: 0 when every probe got its line (whatever the outcomes), 2 on a malformed plan (one line on
stderr, nothing on stdout, no probe run), 1 on an internal failure. A plan is malformed when it is not
UTF-8 JSON, not an object, has an unknown or ill-typed field, ``probes`` is not a list, or any probe is
bad: not an object, no usable or a duplicate ``id``, an unknown ``kind``, a missing or ill-typed field.
Every probe is checked before the first one runs, so a mistake in the plan is reported once, as what it
is, and never costs a probe round. (The library builds plans from checked expectations: a malformed plan
is a bug in whoever wrote it.)
"""

from __future__ import annotations

import _socket as socket  # socket.py without its start-up cost (see the module docstring)
import errno as errno_codes
import math
import posix  # os without its start-up cost (see the module docstring)
import select
import sys
import time

try:  # the C modules behind heapq and struct, which only re-export them (see the module docstring)
    import _struct as struct
    from _heapq import heappop, heappush
except ImportError:  # not CPython
    import struct  # type: ignore[no-redef]
    from heapq import heappop, heappush

try:
    import _json

    C_JSON: Any = _json  # the C parser/escaper behind json, without json's import of re
except ImportError:  # not CPython: the json module does the same, only slower to import
    C_JSON = None

TYPE_CHECKING = False
if TYPE_CHECKING:  # names for annotations only: importing typing costs start-up time (see above)
    from typing import Any, Callable, Dict, Generator, List, Optional, Set, Tuple, TypeVar

    T = TypeVar("T")
    Wait = Tuple[int, Any]  # what a probe waits for: (READ or WRITE, socket) or (SLEEP, seconds)
    Step = Generator[Wait, None, T]  # a probe (or a part of one): yields waits, returns its value
    Result = Dict[str, Any]
    ProbeFunction = Callable[[Dict[str, Any], "ProbeState"], Step[Dict[str, Any]]]

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_CONCURRENCY = 256
MAX_TIMEOUT_S = 3600.0  # a plan asking for more is a mistake, not a probe
MAX_CONCURRENCY = 10000
DEADLINE_MARGIN_S = 2.0  # slack on top of the computed default run deadline
BODY_EXCERPT_BYTES = 256  # docs/contracts.md, "The probe agent": "body (first 256 bytes)"
MAX_HEAD_BYTES = 65536  # an HTTP response head larger than this is not something we probe for
MAX_BODY_BYTES = 65536  # read at most this much of a body (enough for the server's identity JSON)
MAX_REPLY_BYTES = 512  # how much of a UDP reply is reported
MAX_HEADER_VALUE_CHARS = 256
MAX_REPORTED_HEADERS = 32
DEFAULT_UDP_PAYLOAD = "ping"
USER_AGENT = "flowcheck-agent"

KINDS = ("dns", "http", "tcp", "udp")
DNS_QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33}
DNS_QTYPE_NAMES = {number: name for name, number in DNS_QTYPES.items()}
DNS_RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
}
DNS_CLASS_IN = 1

# Socket errors that mean "the network says this destination cannot be reached" (no route, ICMP
# host/network unreachable or administratively prohibited). ECONNREFUSED (RST, ICMP port unreachable)
# is mapped separately to ``refused``.
UNREACHABLE_ERRNOS = frozenset(
    getattr(errno_codes, name)
    for name in ("EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN")
    if hasattr(errno_codes, name)
)
HTTP_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

TIMED_OUT_ERRNOS = frozenset(getattr(errno_codes, name) for name in ("ETIMEDOUT",) if hasattr(errno_codes, name))


class PlanError(Exception):
    """The plan as a whole is unusable (exit 2)."""


class ProbeSpecError(Exception):
    """One probe of the plan is unusable; it gets an ``error`` line, the others still run."""


class ProbeFailure(Exception):
    """A probe ran and failed in a way that is an ``error`` outcome; ``extra`` holds facts learned so far."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ProbeState:
    """What a running probe has got to, read when its timeout fires to say what the timeout means."""

    def __init__(self) -> None:
        self.phase = "start"
        self.connected = False
        # Set when the peer did answer, but with nothing usable (e.g. DNS datagrams that did not match
        # the query): a timeout then must not look like silence.
        self.answered_badly = ""
        self.extra: Dict[str, Any] = {}


# ---------------------------------------------------------------------------------------------------
# Plan parsing and validation


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_seconds(value: Any, what: str, error: Callable[[str], Exception]) -> float:
    if not _number(value) or not 0 < value <= MAX_TIMEOUT_S:
        raise error("%s must be a number of seconds in (0, %g], got %s" % (what, MAX_TIMEOUT_S, _show(value)))
    return float(value)


def _show(value: Any) -> str:
    text = json_dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------------
# JSON through ``_json`` (see the module docstring); same results as ``json.loads``/``json.dumps``.


class _ScanContext:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``, with json's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


_WHITESPACE = " \t\n\r"


def json_loads(text: str) -> Any:
    """``json.loads``; raises ValueError (or RecursionError, for absurd nesting) on bad input."""
    if C_JSON is None:
        import json

        return json.loads(text)
    scan = C_JSON.make_scanner(_ScanContext())
    index = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = scan(text, index)
    except StopIteration as stop:
        raise ValueError("Expecting value at char %d" % stop.value) from None
    except (ValueError, RecursionError):
        raise
    except Exception:
        # The C scanner reports most malformed documents by raising json.decoder.JSONDecodeError, which
        # CPython <= 3.11 can only do once the json package is imported (otherwise a SystemError,
        # "returned NULL without setting an exception"). On this error path only, let json itself
        # parse the text: it raises the proper ValueError saying what is wrong and where.
        import json

        return json.loads(text)
    if text[end:].strip(_WHITESPACE):
        raise ValueError("Extra data at char %d" % end)
    return value


def _make_encoder() -> Any:
    """``json.dumps``' own C encoder (what it uses without ``indent``), built once: one C call per line."""
    if C_JSON is None:
        return None
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan), as
    # json.encoder.JSONEncoder.iterencode passes them (Python 3.9 to 3.14)
    return C_JSON.make_encoder(None, str, C_JSON.encode_basestring_ascii, None, ":", ",", False, False, True)


_C_ENCODER = _make_encoder()


def json_dumps(value: Any) -> str:
    """Compact ``json.dumps`` (ASCII, no spaces) of str/int/float/bool/None/dict/list; other values as str."""
    if C_JSON is None:
        import json

        return json.dumps(value, separators=(",", ":"), default=str)
    return "".join(_C_ENCODER(value, 0))


def parse_plan(raw: bytes) -> Dict[str, Any]:
    """Decode and check the plan's envelope; probes themselves are checked one by one later."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError("the plan is not UTF-8: %s" % exc) from None
    if not text.strip():
        raise PlanError("no plan on stdin (expected one JSON object)")
    try:
        plan = json_loads(text)
    except (ValueError, RecursionError) as exc:
        raise PlanError("the plan is not valid JSON: %s" % exc) from None
    if not isinstance(plan, dict):
        raise PlanError("the plan must be a JSON object, got %s" % type(plan).__name__)
    unknown = sorted(set(plan) - {"timeout", "concurrency", "deadline", "probes"})
    if unknown:
        raise PlanError("unknown plan field(s): %s" % ", ".join(_show(name) for name in unknown))
    timeout = _positive_seconds(plan.get("timeout", DEFAULT_TIMEOUT_S), "plan field 'timeout'", PlanError)
    concurrency = plan.get("concurrency", DEFAULT_CONCURRENCY)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise PlanError("plan field 'concurrency' must be an integer in [1, %d], got %s"
                        % (MAX_CONCURRENCY, _show(concurrency)))
    probes = plan.get("probes")
    if not isinstance(probes, list):
        raise PlanError("plan field 'probes' must be a list, got %s" % _show(probes))
    seen = set()
    specs = []
    for index, probe in enumerate(probes):
        if not isinstance(probe, dict):
            raise PlanError("probes[%d] must be a JSON object, got %s" % (index, _show(probe)))
        probe_id = probe.get("id")
        if not isinstance(probe_id, str) or not probe_id:
            raise PlanError("probes[%d] has no usable 'id' (a non-empty string is required to report its result)"
                            % index)
        if probe_id in seen:
            raise PlanError("probes[%d]: duplicate id %s" % (index, _show(probe_id)))
        seen.add(probe_id)
        try:
            specs.append(validate_probe(probe, timeout))
        except ProbeSpecError as exc:
            raise PlanError("probes[%d] (id %s): %s" % (index, _show(probe_id), exc)) from None
    deadline = plan.get("deadline")
    if deadline is not None:
        deadline = _positive_seconds(deadline, "plan field 'deadline'", PlanError)
    return {"timeout": timeout, "concurrency": concurrency, "deadline": deadline, "probes": probes, "specs": specs}


def _require(probe: Dict[str, Any], field: str) -> Any:
    if field not in probe:
        raise ProbeSpecError("probe field '%s' is missing" % field)
    return probe[field]


def _str_field(probe: Dict[str, Any], field: str, default: Optional[str] = None) -> str:
    value = probe.get(field, default) if default is not None else _require(probe, field)
    if not isinstance(value, str) or not value:
        raise ProbeSpecError("probe field '%s' must be a non-empty string, got %s" % (field, _show(value)))
    return value


def _port_field(probe: Dict[str, Any], default: Optional[int] = None) -> int:
    value = probe.get("port", default) if default is not None else _require(probe, "port")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ProbeSpecError("probe field 'port' must be an integer in [1, 65535], got %s" % _show(value))
    return value


def _check_header_text(text: str, what: str) -> None:
    if any(ch in text for ch in "\r\n\0"):
        raise ProbeSpecError("%s must not contain CR, LF or NUL: %s" % (what, _show(text)))


def validate_probe(probe: Dict[str, Any], plan_timeout: float) -> Dict[str, Any]:
    """Normalise one probe spec (defaults filled in) or raise ``ProbeSpecError`` with what is wrong."""
    kind = probe.get("kind")
    if kind is None:
        raise ProbeSpecError("probe field 'kind' is missing")
    if kind not in KINDS:
        raise ProbeSpecError("unknown probe kind %s; expected one of %s" % (_show(kind), ", ".join(KINDS)))
    spec: Dict[str, Any] = {"id": probe["id"], "kind": kind}
    spec["timeout"] = _positive_seconds(probe.get("timeout", plan_timeout), "probe field 'timeout'", ProbeSpecError)
    if kind in ("tcp", "http", "udp"):
        spec["host"] = _str_field(probe, "host")
        spec["port"] = _port_field(probe)
    if kind == "udp":
        payload = probe.get("payload", DEFAULT_UDP_PAYLOAD)
        if not isinstance(payload, str):
            raise ProbeSpecError("probe field 'payload' must be a string, got %s" % _show(payload))
        spec["payload"] = payload
    elif kind == "http":
        method = _str_field(probe, "method", "GET")
        if not set(method) <= HTTP_TOKEN_CHARS:
            raise ProbeSpecError("probe field 'method' is not an HTTP token: %s" % _show(method))
        path = _str_field(probe, "path", "/")
        if any(ch.isspace() or ch == "\0" for ch in path):
            raise ProbeSpecError("probe field 'path' must not contain whitespace: %s" % _show(path))
        headers = probe.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ProbeSpecError("probe field 'headers' must be an object of string to string, got %s"
                                 % _show(headers))
        for name, value in headers.items():
            if not name or not set(name) <= HTTP_TOKEN_CHARS:
                raise ProbeSpecError("header name is not an HTTP token: %s" % _show(name))
            _check_header_text(value, "header %s" % name)
        body = probe.get("body", "")
        if not isinstance(body, str):
            raise ProbeSpecError("probe field 'body' must be a string, got %s" % _show(body))
        spec.update(method=method, path=path, headers=headers, body=body)
    elif kind == "dns":
        spec["server"] = _str_field(probe, "server")
        spec["port"] = _port_field(probe, 53)
        name = _str_field(probe, "name")
        spec["qname"] = encode_dns_name(name)
        spec["name"] = name
        qtype = _str_field(probe, "qtype", "A").upper()
        if qtype not in DNS_QTYPES:
            raise ProbeSpecError("unsupported DNS qtype %s; expected one of %s"
                                 % (_show(qtype), ", ".join(sorted(DNS_QTYPES))))
        spec["qtype"] = qtype
        transport = _str_field(probe, "transport", "udp").lower()
        if transport not in ("udp", "tcp"):
            raise ProbeSpecError("probe field 'transport' must be 'udp' or 'tcp', got %s" % _show(transport))
        spec["transport"] = transport
    return spec

# ---------------------------------------------------------------------------------------------------
# Waiting: a probe yields one of these and the loop resumes it when the socket is ready (or throws
# ``ProbeTimeout`` into it when its deadline passes).

SLEEP, READ, WRITE = 0, 1, 2
POLL_EVENTS = {READ: select.POLLIN, WRITE: select.POLLOUT}
RESOLVE_POLL_S = 0.005
IN_PROGRESS = frozenset(
    getattr(errno_codes, name) for name in ("EINPROGRESS", "EWOULDBLOCK", "EAGAIN", "EALREADY")
    if hasattr(errno_codes, name)
)


def _ip_family(host: str) -> Optional[int]:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family
    return None


def resolve(host: str, port: int, socktype: int, state: ProbeState) -> Step[Tuple[int, Tuple[Any, ...]]]:
    """An address to reach ``host``: literal IPs directly (the normal case: pod IPs), names through the
    system resolver in a helper thread, since a lookup cannot be made non-blocking."""
    family = _ip_family(host)
    if family is not None:
        return family, (host, port)
    import threading  # only when a probe names a host

    state.phase = "resolve"
    outcome: List[Any] = []

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socktype))
        except Exception as exc:  # handed over to the probe below
            outcome.append(exc)

    threading.Thread(target=lookup, daemon=True).start()
    while not outcome:
        yield SLEEP, RESOLVE_POLL_S
    infos = outcome[0]
    if isinstance(infos, socket.gaierror):
        raise ProbeFailure("cannot resolve host %r: %s" % (host, infos.strerror or infos))
    if isinstance(infos, Exception):
        raise infos
    if not infos:
        raise ProbeFailure("cannot resolve host %r: no addresses" % host)
    family, _, _, _, address = infos[0]
    return family, address


def open_socket(host: str, port: int, socktype: int, state: ProbeState) -> Step[socket.socket]:
    """A non-blocking socket connected to host:port (for UDP, connecting only fixes the peer)."""
    family, address = yield from resolve(host, port, socktype, state)
    state.phase = "connect"
    sock = socket.socket(family, socktype)
    try:
        sock.setblocking(False)
        error = sock.connect_ex(address)
        _note_source(sock, state)
        if error in IN_PROGRESS:
            if not _writable_now(sock):
                yield WRITE, sock
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, posix.strerror(error))  # OSError picks the subclass (ConnectionRefusedError, ...)
    except BaseException:
        sock.close()
        raise
    if socktype == socket.SOCK_STREAM:
        state.connected = True
    return sock


_NOW = select.poll()  # for _writable_now; never holds a descriptor between calls


def _writable_now(sock: socket.socket) -> bool:
    """Whether a connect in progress has already completed (or failed). When the peer is near, the whole
    handshake often happens inside ``connect``; the probe then goes on at once (an HTTP request reaches the
    server with the connection, so the server handles both in one wake-up) instead of one loop turn later."""
    fd = sock.fileno()
    _NOW.register(fd, select.POLLOUT)
    try:
        return bool(_NOW.poll(0))
    finally:
        _NOW.unregister(fd)


def _note_source(sock: socket.socket, state: ProbeState) -> None:
    """Record the local address and port of the probe's socket (``saddr``, ``sport``), so the probe's packets
    can be told apart from every other probe's -- in Hubble flows, in a server's log -- by their 5-tuple.

    ``connect`` binds them: for TCP as it sends the SYN (so a probe whose SYN is dropped still knows its
    port), for UDP when it fixes the peer. A connect that failed before binding (no route) leaves port 0:
    nothing was sent from any port, and nothing is reported.
    """
    try:
        address = sock.getsockname()
    except OSError:
        return
    if address[1]:
        state.extra["saddr"] = address[0]
        state.extra["sport"] = address[1]


def recv(sock: socket.socket, size: int) -> Step[bytes]:
    while True:
        try:
            return sock.recv(size)
        except (BlockingIOError, InterruptedError):
            yield READ, sock


def sendall(sock: socket.socket, data: bytes) -> Step[None]:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except (BlockingIOError, InterruptedError):
            yield WRITE, sock


class IncompleteRead(Exception):
    def __init__(self, partial: bytes) -> None:
        super().__init__("incomplete read")
        self.partial = partial


class LimitOverrun(Exception):
    pass


class StreamReader:
    """Buffered reads from a connected stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> Step[bool]:
        data = yield from recv(self.sock, 65536)
        self.buffer.extend(data)
        return bool(data)

    def _take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_until(self, delimiter: bytes, limit: int) -> Step[bytes]:
        """Up to and including ``delimiter``; ``LimitOverrun`` past ``limit`` bytes, ``IncompleteRead`` on EOF."""
        start = 0
        while True:
            index = self.buffer.find(delimiter, start)
            if index >= 0:
                return self._take(index + len(delimiter))
            if len(self.buffer) > limit:
                raise LimitOverrun()
            start = max(0, len(self.buffer) - len(delimiter) + 1)
            if not (yield from self._fill()):
                raise IncompleteRead(self._take(len(self.buffer)))

    def read_exactly(self, size: int) -> Step[bytes]:
        while len(self.buffer) < size:
            if not (yield from self._fill()):
                raise IncompleteRead(self._take(len(self.buffer)))
        return self._take(size)

    def read_to_eof(self, limit: int) -> Step[Tuple[bytes, bool]]:
        """Everything until the peer closes (at most ``limit`` bytes) and whether that was all."""
        while len(self.buffer) < limit:
            if not (yield from self._fill()):
                return self._take(len(self.buffer)), True
        return self._take(limit), False


# ---------------------------------------------------------------------------------------------------
# Probe kinds


def probe_tcp(spec: Dict[str, Any], state: ProbeState) -> Step[Result]:
    sock = yield from open_socket(spec["host"], spec["port"], socket.SOCK_STREAM, state)
    sock.close()
    return {"outcome": "ok"}

def build_http_request(spec: Dict[str, Any]) -> bytes:
    headers: Dict[str, str] = spec["headers"]
    lower = {name.lower() for name in headers}
    host = spec["host"]
    if _ip_family(host) == socket.AF_INET6:
        host = "[%s]" % host
    lines = ["%s %s HTTP/1.1" % (spec["method"], spec["path"])]
    if "host" not in lower:
        lines.append("Host: %s" % (host if spec["port"] == 80 else "%s:%d" % (host, spec["port"])))
    if "user-agent" not in lower:
        lines.append("User-Agent: %s" % USER_AGENT)
    if "accept" not in lower:
        lines.append("Accept: */*")
    lines.extend("%s: %s" % (name, value) for name, value in headers.items() if name.lower() != "connection")
    lines.append("Connection: close")
    body = spec["body"].encode("utf-8")
    if (body or spec["method"] in ("POST", "PUT", "PATCH")) and "content-length" not in lower:
        lines.append("Content-Length: %d" % len(body))
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1", "replace") + bytes(body)

def _read_head(reader: StreamReader) -> Step[bytes]:
    try:
        return (yield from reader.read_until(b"\r\n\r\n", MAX_HEAD_BYTES))
    except IncompleteRead as exc:
        if not exc.partial:
            raise ProbeFailure("the connection was closed without an HTTP response") from None
        raise ProbeFailure("the connection was closed in the middle of the response head: %r"
                           % exc.partial[:80]) from None
    except LimitOverrun:
        raise ProbeFailure("the HTTP response head is larger than %d bytes" % MAX_HEAD_BYTES) from None

def _parse_head(head: bytes) -> Tuple[int, str, List[Tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise ProbeFailure("not an HTTP response: %r" % lines[0][:80])
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ProbeFailure("malformed HTTP response header line: %r" % line[:80], status=status)
        headers.append((name.lower(), value.strip()))
    return status, reason, headers

def _read_chunked(reader: StreamReader) -> Step[Tuple[bytes, bool]]:
    body = bytearray()
    while len(body) < MAX_BODY_BYTES:
        try:
            size_line = yield from reader.read_until(b"\n", 1024)
        except LimitOverrun:
            raise ProbeFailure("malformed chunk size line (too long)") from None
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProbeFailure("malformed chunk size line: %r" % size_line[:40]) from None
        if size == 0:
            return bytes(body), True
        chunk = yield from reader.read_exactly(size + 2)
        body.extend(chunk[:-2])
    return bytes(body[:MAX_BODY_BYTES]), False


def _read_body(reader: StreamReader, headers: Dict[str, str]) -> Step[Tuple[bytes, bool]]:
    """The body (at most ``MAX_BODY_BYTES``) and whether that is all of it."""
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    try:
        if chunked:
            return (yield from _read_chunked(reader))
        if "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise ProbeFailure("malformed Content-Length: %r" % headers["content-length"]) from None
            if length < 0:
                raise ProbeFailure("negative Content-Length: %d" % length)
            body = yield from reader.read_exactly(min(length, MAX_BODY_BYTES))
            return body, length <= MAX_BODY_BYTES
        return (yield from reader.read_to_eof(MAX_BODY_BYTES))
    except IncompleteRead as exc:
        if chunked:
            raise ProbeFailure("the connection was closed in the middle of a chunked body") from None
        raise ProbeFailure("the connection was closed after %d bytes of the response body"
                           % len(exc.partial)) from None

def _identity(body: bytes) -> Optional[Dict[str, Any]]:
    """The JSON a flowcheck probe server answers with, if this body is one.
    (docs/contracts.md, "The probe server")."""
    try:
        document = json_loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if isinstance(document, dict) and isinstance(document.get("server"), str):
        return document
    return None

def probe_http(spec: Dict[str, Any], state: ProbeState) -> Step[Result]:
    sock = yield from open_socket(spec["host"], spec["port"], socket.SOCK_STREAM, state)
    try:
        state.phase = "request"
        yield from sendall(sock, build_http_request(spec))
        state.phase = "response"
        reader = StreamReader(sock)
        while True:
            status, reason, header_list = _parse_head((yield from _read_head(reader)))
            if not 100 <= status < 200 or status == 101:
                break  # skip interim responses such as 100 Continue
        headers: Dict[str, str] = {}
        for name, value in header_list:
            headers.setdefault(name, value)
        state.extra.update(status=status, reason=reason)
        if spec["method"] == "HEAD" or status in (101, 204, 304):
            body, complete = b"", True
        else:
            body, complete = yield from _read_body(reader, headers)
    finally:
        sock.close()
    result: Result = {
        "outcome": "ok",
        "status": status,
        "reason": reason,
        "body": body[:BODY_EXCERPT_BYTES].decode("utf-8", "replace"),
        "headers": {
            name: value[:MAX_HEADER_VALUE_CHARS] for name, value in list(headers.items())[:MAX_REPORTED_HEADERS]
        },
    }
    if not complete:
        result["body_truncated"] = True
    identity = _identity(body) if complete else None
    if identity is not None:
        result["server"] = identity["server"]
        result["echo"] = {key: identity[key] for key in ("method", "path", "headers") if key in identity}
    return result


def probe_udp(spec: Dict[str, Any], state: ProbeState) -> Step[Result]:
    sock = yield from open_socket(spec["host"], spec["port"], socket.SOCK_DGRAM, state)
    try:
        state.phase = "response"
        sock.send(spec["payload"].encode("utf-8"))
        data = yield from recv(sock, 65535)
    finally:
        sock.close()
    result: Result = {"outcome": "ok", "reply": data[:MAX_REPLY_BYTES].decode("utf-8", "replace")}
    identity = _identity(data)
    if identity is not None:
        result["server"] = identity["server"]
    return result

# ---------------------------------------------------------------------------------------------------
# DNS: the query is built and the answer parsed here (RFC 1035), so no resolver library is needed.


def encode_dns_name(name: str) -> bytes:
    text = name[:-1] if name.endswith(".") else name
    if not text:
        return b"\0"
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ProbeSpecError("DNS name %s is not ASCII (give the IDNA/punycode form)" % _show(name)) from None
    out = bytearray()
    for label in raw.split(b"."):
        if not 1 <= len(label) <= 63:
            raise ProbeSpecError("DNS name %s has an empty label or one longer than 63 bytes" % _show(name))
        out.append(len(label))
        out.extend(label)
    out.append(0)
    if len(out) > 255:
        raise ProbeSpecError("DNS name %s is longer than 255 bytes" % _show(name))
    return bytes(out)


def build_dns_query(query_id: int, qname: bytes, qtype: int) -> bytes:
    header = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0)  # RD=1, one question
    return header + qname + struct.pack("!HH", qtype, DNS_CLASS_IN)


class DnsFormatError(Exception):
    pass


def _read_name(message: bytes, offset: int) -> Tuple[str, int]:
    """A (possibly compressed) domain name at ``offset``; returns it and the offset after it."""
    labels: List[str] = []
    end = -1
    jumps = 0
    while True:
        if offset >= len(message):
            raise DnsFormatError("name runs past the end of the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise DnsFormatError("truncated compression pointer")
            jumps += 1
            if jumps > 64:
                raise DnsFormatError("compression pointer loop")
            if end < 0:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | message[offset + 1]
            continue
        if length & 0xC0:
            raise DnsFormatError("unsupported label type")
        offset += 1
        if length == 0:
            break
        labels.append(message[offset:offset + length].decode("ascii", "replace"))
        offset += length
    return ".".join(labels) + ".", (end if end >= 0 else offset)


def _rdata_text(message: bytes, rtype: int, start: int, length: int) -> str:
    rdata = message[start:start + length]
    if rtype == 1 and length == 4:
        return socket.inet_ntop(socket.AF_INET, rdata)
    if rtype == 28 and length == 16:
        return socket.inet_ntop(socket.AF_INET6, rdata)
    if rtype in (2, 5, 12):
        return _read_name(message, start)[0]
    if rtype == 15 and length >= 3:
        return "%d %s" % (struct.unpack("!H", rdata[:2])[0], _read_name(message, start + 2)[0])
    if rtype == 33 and length >= 7:
        priority, weight, port = struct.unpack("!HHH", rdata[:6])
        return "%d %d %d %s" % (priority, weight, port, _read_name(message, start + 6)[0])
    if rtype == 16:
        parts = []
        index = 0
        while index < len(rdata):
            size = rdata[index]
            parts.append(rdata[index + 1:index + 1 + size].decode("utf-8", "replace"))
            index += 1 + size
        return "".join(parts)
    return rdata.hex()


def parse_dns_response(message: bytes, query_id: int, qname: bytes, qtype: int) -> Result:
    """Check that ``message`` answers our query (id, QR bit, question) and report rcode and answers.

    Raises ``DnsFormatError`` for anything that is not a well-formed answer to *this* query.
    """
    if len(message) < 12:
        raise DnsFormatError("a %d-byte message is shorter than a DNS header" % len(message))
    answer_id, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", message[:12])
    if answer_id != query_id:
        raise DnsFormatError("answer id %d does not match query id %d" % (answer_id, query_id))
    if not flags & 0x8000:
        raise DnsFormatError("the message is a query, not a response (QR bit clear)")
    rcode = flags & 0x000F
    offset = 12
    if qdcount != 1 and not (qdcount == 0 and rcode != 0):
        # Error answers (FORMERR, REFUSED from some servers) may omit the question; a NOERROR answer
        # without exactly our question cannot be trusted to be ours.
        raise DnsFormatError("the answer carries %d questions, expected 1" % qdcount)
    if qdcount == 1:
        name, offset = _read_name(message, offset)
        if offset + 4 > len(message):
            raise DnsFormatError("truncated question")
        answer_qtype, answer_qclass = struct.unpack("!HH", message[offset:offset + 4])
        offset += 4
        expected = _read_name(qname, 0)[0]
        if name.lower() != expected.lower() or answer_qtype != qtype or answer_qclass != DNS_CLASS_IN:
            raise DnsFormatError("the answer is for question %s/%d, not %s/%d" % (name, answer_qtype, expected, qtype))
    answers = []
    for _ in range(ancount):
        name, offset = _read_name(message, offset)
        if offset + 10 > len(message):
            raise DnsFormatError("truncated resource record")
        rtype, _, ttl, rdlength = struct.unpack("!HHIH", message[offset:offset + 10])
        offset += 10
        if offset + rdlength > len(message):
            raise DnsFormatError("truncated record data")
        answers.append({
            "name": name,
            "type": DNS_QTYPE_NAMES.get(rtype, "TYPE%d" % rtype),
            "ttl": ttl,
            "data": _rdata_text(message, rtype, offset, rdlength),
        })
        offset += rdlength
    return {
        "outcome": "ok",
        "rcode": DNS_RCODES.get(rcode, "RCODE%d" % rcode),
        "answers": answers,
        "truncated": bool(flags & 0x0200),
        "authoritative": bool(flags & 0x0400),
    }

def probe_dns(spec: Dict[str, Any], state: ProbeState) -> Step[Result]:
    query_id = struct.unpack("!H", posix.urandom(2))[0]
    qtype = DNS_QTYPES[spec["qtype"]]
    query = build_dns_query(query_id, spec["qname"], qtype)
    if spec["transport"] == "udp":
        sock = yield from open_socket(spec["server"], spec["port"], socket.SOCK_DGRAM, state)
        try:
            state.phase = "response"
            sock.send(query)
            ignored = 0
            while True:
                data = yield from recv(sock, 65535)
                try:
                    result = parse_dns_response(data, query_id, spec["qname"], qtype)
                except DnsFormatError as exc:
                    # A stray or garbled datagram: keep waiting for the real answer, but remember that
                    # the server did answer, so a timeout is not mistaken for silence.
                    ignored += 1
                    state.answered_badly = "the server sent %d datagram(s), none a valid answer to the query " \
                                           "(last: %s)" % (ignored, exc)
                    continue
                result["transport"] = "udp"
                return result
        finally:
            sock.close()
    sock = yield from open_socket(spec["server"], spec["port"], socket.SOCK_STREAM, state)
    try:
        state.phase = "request"
        yield from sendall(sock, struct.pack("!H", len(query)) + query)
        state.phase = "response"
        reader = StreamReader(sock)
        try:
            size = struct.unpack("!H", (yield from reader.read_exactly(2)))[0]
            data = yield from reader.read_exactly(size)
        except IncompleteRead:
            raise ProbeFailure("the DNS server closed the TCP connection without a complete answer") from None
        try:
            result = parse_dns_response(data, query_id, spec["qname"], qtype)
        except DnsFormatError as exc:
            raise ProbeFailure("the DNS server's answer is not a valid answer to the query: %s" % exc) from None
        result["transport"] = "tcp"
        return result
    finally:
        sock.close()


PROBES: Dict[str, ProbeFunction] = {"tcp": probe_tcp, "http": probe_http, "udp": probe_udp, "dns": probe_dns}


# ---------------------------------------------------------------------------------------------------
# Running a plan


def _errno_name(exc: OSError) -> str:
    return errno_codes.errorcode.get(exc.errno or 0, str(exc.errno))


def _os_error_result(exc: OSError, spec: Dict[str, Any], state: ProbeState) -> Result:
    detail = "%s: %s" % (_errno_name(exc), exc.strerror or exc)
    if isinstance(exc, ConnectionRefusedError):
        return {"outcome": "refused", "errno": _errno_name(exc), "detail": detail}
    if exc.errno in UNREACHABLE_ERRNOS:
        return {"outcome": "unreachable", "errno": _errno_name(exc), "detail": detail}
    if exc.errno in TIMED_OUT_ERRNOS and not state.connected:
        return _timeout_result(spec, state)  # the kernel gave up retrying the SYN before our timeout did
    if state.connected:
        detail = "the connection failed after it was established: " + detail
    return {"outcome": "error", "errno": _errno_name(exc), "detail": detail}


def _timeout_result(spec: Dict[str, Any], state: ProbeState) -> Result:
    timeout = spec["timeout"]
    if state.answered_badly:
        return {"outcome": "error", "detail": "no valid answer within %g s: %s" % (timeout, state.answered_badly)}
    if state.connected:
        return {"outcome": "error",
                "detail": "connected, but no complete answer within %g s (a stuck server, not a drop)" % timeout}
    if state.phase == "resolve":
        return {"outcome": "error", "detail": "resolving the host name took longer than %g s" % timeout}
    return {"outcome": "timeout"}


class ProbeTimeout(Exception):
    """Thrown into a probe whose deadline passed (never escapes: the runner maps it to the outcome)."""


class Task:
    """One running probe: its generator, what it waits on, and its deadline."""

    __slots__ = ("deadline", "probe", "spec", "started", "state", "steps", "waiting_fd", "wake_at")

    def __init__(self, probe: Dict[str, Any], spec: Dict[str, Any]) -> None:
        self.probe = probe
        self.spec = spec
        self.state = ProbeState()
        self.steps = PROBES[spec["kind"]](spec, self.state)
        self.started = time.monotonic()
        self.deadline = self.started + spec["timeout"]
        self.waiting_fd = -1  # the descriptor this task waits on in the poller, -1 if none
        self.wake_at = 0.0


class Runner:
    """Drives every probe of a plan with one ``select.poll`` loop, ``concurrency`` at a time, and reports
    each result as soon as it is known."""

    def __init__(self, plan: Dict[str, Any], write: Callable[[str], None]) -> None:
        self.plan = plan
        self.write = write
        self.reported: Set[str] = set()
        self.poller = select.poll()
        self.waiting: Dict[int, Task] = {}  # file descriptor -> the task waiting on it
        self.active: Set[Task] = set()
        self.timers: List[Tuple[float, int, Task]] = []  # probe deadlines and sleeps, earliest first
        self.sequence = 0
        self.unwritten: List[str] = []  # result lines not yet written (see ``flush``)

    def emit(self, probe: Dict[str, Any], result: Result, elapsed: float) -> None:
        if probe["id"] in self.reported:
            return
        line: Result = {"id": probe["id"], "kind": probe.get("kind"), "outcome": result.pop("outcome"),
                        "elapsed": round(elapsed, 6)}
        line.update(result)
        self.reported.add(probe["id"])
        self.unwritten.append(json_dumps(line) + "\n")

    def flush(self) -> None:
        """Write every finished probe's line: called before each wait, so a result is never held back while
        the agent waits (or is killed), yet probes that finish together cost one write, not one each."""
        if self.unwritten:
            text = "".join(self.unwritten)
            del self.unwritten[:]
            self.write(text)

    def default_deadline(self) -> float:
        specs = self.plan["specs"]
        longest = max([self.plan["timeout"]] + [spec["timeout"] for spec in specs])
        waves = max(1, math.ceil(len(specs) / int(self.plan["concurrency"])))
        return float(longest) * waves + DEADLINE_MARGIN_S

    # -- the loop -------------------------------------------------------------------------------------

    def _timer(self, when: float, task: Task) -> None:
        self.sequence += 1
        heappush(self.timers, (when, self.sequence, task))

    def _start(self, probe: Dict[str, Any], spec: Dict[str, Any]) -> None:
        task = Task(probe, spec)
        self.active.add(task)
        self._timer(task.deadline, task)
        self._step(task)

    def _step(self, task: Task, error: Optional[BaseException] = None) -> None:
        """Resume ``task`` (throwing ``error`` into it) until it waits again or finishes."""
        try:
            wait = task.steps.throw(error) if error is not None else task.steps.send(None)
        except StopIteration as stop:
            self._finish(task, stop.value, None)
            return
        except Exception as exc:  # every failure of a probe is that probe's result
            self._finish(task, None, exc)
            return
        if error is not None and isinstance(error, ProbeTimeout):
            # a probe must not catch its timeout and carry on; if it did, it is a bug in that probe
            task.steps.close()
            self._finish(task, None, RuntimeError("the probe ignored its timeout"))
            return
        kind, target = wait
        if kind == SLEEP:
            task.wake_at = time.monotonic() + target
            self._timer(task.wake_at, task)
        else:
            fd = target.fileno()
            if fd < 0 or fd in self.waiting:  # a closed or already-watched socket: a bug in the probe
                task.steps.close()
                self._finish(task, None, RuntimeError("cannot wait on the probe's socket (fd %d)" % fd))
                return
            self.poller.register(fd, POLL_EVENTS[kind])
            self.waiting[fd] = task
            task.waiting_fd = fd

    def _finish(self, task: Task, result: Optional[Result], error: Optional[Exception]) -> None:
        self.active.discard(task)
        self._unwatch(task)
        spec, state = task.spec, task.state
        if error is not None:
            if isinstance(error, ProbeTimeout):
                result = _timeout_result(spec, state)
            elif isinstance(error, ProbeFailure):
                result = {"outcome": "error", "detail": error.detail}
                result.update(error.extra)
            elif isinstance(error, OSError):
                result = _os_error_result(error, spec, state)
            else:  # a bug must cost one probe, never the run
                result = {"outcome": "error",
                          "detail": "agent internal error: %s: %s" % (type(error).__name__, error)}
        assert result is not None
        for key, value in state.extra.items():
            result.setdefault(key, value)
        if result["outcome"] != "ok":
            result.setdefault("phase", state.phase)
        if spec["kind"] != "udp" and not (spec["kind"] == "dns" and spec["transport"] == "udp"):
            result["connected"] = state.connected
        if spec["kind"] == "dns":
            result.setdefault("transport", spec["transport"])
        self.emit(task.probe, result, time.monotonic() - task.started)

    def _unwatch(self, task: Task) -> None:
        if task.waiting_fd >= 0:
            self.poller.unregister(task.waiting_fd)
            del self.waiting[task.waiting_fd]
            task.waiting_fd = -1

    def _fire_timers(self, now: float) -> None:
        while self.timers and self.timers[0][0] <= now:
            when, _, task = heappop(self.timers)
            if task not in self.active:
                continue  # finished already: a stale entry
            if when >= task.deadline:
                self._unwatch(task)
                self._step(task, ProbeTimeout())
            elif when == task.wake_at and task.waiting_fd < 0:
                task.wake_at = 0.0
                self._step(task)

    def run(self) -> None:
        started = time.monotonic()
        run_deadline = started + (self.plan["deadline"] or self.default_deadline())
        # zip(strict=) is Python 3.10+; parse_plan made one spec per probe
        queued: List[Tuple[Dict[str, Any], Dict[str, Any]]] = list(zip(self.plan["probes"], self.plan["specs"]))  # noqa: B905
        outstanding = [probe for probe, _ in queued]
        concurrency = self.plan["concurrency"]
        next_up = 0
        while next_up < len(queued) or self.active:
            while next_up < len(queued) and len(self.active) < concurrency:
                self._start(*queued[next_up])
                next_up += 1
            now = time.monotonic()
            if now >= run_deadline:
                break
            wake = min(self.timers[0][0] if self.timers else run_deadline, run_deadline)
            self.flush()
            if self.active:
                # poll() takes milliseconds; round up so a deadline is never polled for too early
                for fd, _ in self.poller.poll(max(0, math.ceil((wake - now) * 1000))):
                    task = self.waiting.get(fd)
                    if task is not None:
                        self._unwatch(task)
                        self._step(task)
            self._fire_timers(time.monotonic())
        for task in list(self.active):
            task.steps.close()  # closes the probe's sockets
        for probe in outstanding:
            if probe["id"] not in self.reported:
                self.emit(probe, {"outcome": "error", "phase": "deadline",
                                  "detail": "the run's deadline of %g s passed before this probe finished"
                                            % (run_deadline - started)},
                          time.monotonic() - started)
        self.flush()


def _raise_fd_limit(concurrency: int) -> None:
    """Let ``concurrency`` sockets be open at once (container soft limits are often 1024)."""
    wanted = concurrency * 2 + 64
    if posix.sysconf("SC_OPEN_MAX") >= wanted:  # the soft limit: enough already, spare importing resource
        return
    try:
        import resource
    except ImportError:  # not on this platform; probes then report EMFILE as errors
        return
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    except (ValueError, OSError):
        pass


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main() -> int:
    try:
        plan = parse_plan(sys.stdin.buffer.read())
    except PlanError as exc:
        sys.stderr.write("flowcheck agent: malformed plan: %s\n" % exc)
        return 2
    _raise_fd_limit(plan["concurrency"])
    try:
        Runner(plan, _write_stdout).run()
    except BrokenPipeError:
        # Whoever reads our results is gone; there is nobody to report to.
        posix.dup2(posix.open("/dev/null", posix.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        sys.stderr.write("flowcheck agent: internal error: %s: %s\n" % (type(exc).__name__, exc))
        return 1
    return 0


def _exit(code: int) -> None:
    """Exit now, without waiting for a name lookup still stuck in its helper thread (it cannot be
    interrupted, and a normal interpreter exit would wait for it): every result is written by then."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    posix._exit(code)


if __name__ == "__main__":
    _exit(main())
