"""Intent files: intended paths declared in YAML, each one a test (docs/contracts.md, "Intent files").

A repository states its intent without writing Python: a file named ``*.flowcheck.yaml`` (or
``.yml``) anywhere pytest collects holds a list of paths -- or a mapping whose ``paths`` key holds
it -- each with ``from``, ``to``, ``port``/``protocol``, an optional ``http``/``dns`` request, the
``verdict``, an optional ``name`` (the test id; else one is made from the path), ``live-only``
and ``review``. The pytest plugin makes every entry a test item, checked like a
``flowcheck_paths.expect`` call: against the model always, on the cluster when one is attached.

Reading is in two steps, so that a broken policy or topology cannot stop collection:
``parse_intent_entries`` checks each entry's shape (keys, types, verdict, endpoint and request
syntax) without the topology, and ``IntentEntry.expectation(topology)`` checks it against the
topology when the test runs. Every mistake is one ``IntentError`` line naming the file, the entry
(its line, index and name) and the field; a malformed entry is a mistake of that entry alone, so one
slip in a file of two hundred paths leaves the other hundred and ninety-nine read (``parse_intent``
and ``read_intent``, for callers that want all or nothing, raise the first).

``render_intent`` writes entries back (what ``flowcheck init`` writes), in the same form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flowcheck.errors import InputError, TopologyError
from flowcheck.harness.expectations import Expectation, ExpectationError, make_expectation, parse_http
from flowcheck.manifests.documents import type_name, yaml_error_text
from flowcheck.model.flows import endpoint_from_text, parse_endpoint
from flowcheck.model.topology import Topology
from flowcheck.probe.plan import DNS_QTYPES
from flowcheck.verdict import EXPECTABLE_VERDICTS, Verdict
from flowcheck.vocabulary import http_method_mistake, http_method_typo

ENTRY_KEYS = ("name", "from", "to", "port", "protocol", "http", "dns", "qtype", "verdict", "live-only", "review")
_HTTP_KEYS = ("method", "path", "headers", "host")
_PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP")
_Bad = Callable[[str, str], "IntentError"]  # bad(message, field) -> the error naming this entry
_ARGUMENT_FIELD = re.compile(r"^(?P<name>[a-z_]+)=")
# make_expectation names a mistake by its Python argument; an intent file by its key.
_FIELD_OF_ARGUMENT = {"live_only": "live-only", "headers": "http.headers", "host": "http.host", "source": "from",
                      "destination": "to"}


class IntentError(InputError):
    """A mistake in an intent file: the file, the entry (line, index, name) and the field."""

    def __init__(self, path: str, message: str, *, index: int | None = None, line: int | None = None,
                 name: str | None = None, field: str = "") -> None:
        self.path = path
        self.index = index
        self.line = line
        self.name = name
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line is not None else "")
        if self.index is not None:
            where += f": entry {self.index}" + (f" ({self.name})" if self.name else "")
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class IntentEntry:
    """One entry, its shape checked: what ``flowcheck_paths.expect`` would be called with."""

    path: str
    index: int
    line: int | None
    name: str
    source: str
    destination: str
    verdict: Verdict
    port: int | str | None = None
    protocol: str | None = None
    http: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None
    dns: str | None = None
    qtype: str = "A"
    live_only: bool = False
    review: str | None = None
    named: bool = False
    """True when the file gave the ``name`` (else it was made from the path)."""

    def error(self, message: str, field_: str = "") -> IntentError:
        return IntentError(self.path, message, index=self.index, line=self.line, name=self.name if self.named else None,
                           field=field_)

    def expectation(self, topology: Topology) -> Expectation:
        """The expectation this entry declares, checked against ``topology`` (``IntentError`` otherwise)."""
        for key, ref in (("from", self.source), ("to", self.destination)):
            if isinstance(endpoint_from_text(ref), str):
                try:
                    topology.workload(ref)
                except TopologyError as exc:
                    raise self.error(f"{exc.message} (topology {exc.path})", key) from None
        try:
            return make_expectation(topology, self.source, self.destination, verdict=self.verdict, port=self.port,
                                    protocol=self.protocol, http=self.http, headers=self.headers or None,
                                    host=self.host, dns=self.dns, qtype=self.qtype, live_only=self.live_only)
        except ExpectationError as exc:
            text = str(exc)
            match = _ARGUMENT_FIELD.match(text)
            key = ""
            if match:
                key = _FIELD_OF_ARGUMENT.get(match["name"], match["name"])
                text = text[match.end():].lstrip("'\"").split(": ", 1)[-1] if ": " in text else text
            raise self.error(text, key) from None

    def to_yaml(self) -> dict[str, Any]:
        """The entry as the file writes it (keys in the documented order; defaults left out)."""
        out: dict[str, Any] = {}
        if self.named:
            out["name"] = self.name
        out["from"] = self.source
        out["to"] = self.destination
        if self.port is not None:
            out["port"] = self.port
        if self.protocol is not None:
            out["protocol"] = self.protocol
        if self.http is not None:
            if self.headers or self.host:
                method, path = parse_http(self.http)
                http: dict[str, Any] = {"method": method, "path": path}
                if self.headers:
                    http["headers"] = dict(self.headers)
                if self.host:
                    http["host"] = self.host
                out["http"] = http
            else:
                out["http"] = self.http
        if self.dns is not None:
            out["dns"] = self.dns
        if self.qtype != "A":
            out["qtype"] = self.qtype
        out["verdict"] = self.verdict.value
        if self.live_only:
            out["live-only"] = True
        if self.review:
            out["review"] = self.review
        return out


def read_intent(path: str | Path) -> list[IntentEntry]:
    """Every entry of an intent file, in order, its shape checked (``IntentError`` for the first mistake)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IntentError(name, f"cannot read file: {exc}") from None
    return parse_intent(text, name)


def parse_intent(text: str, path: str = "<intent>") -> list[IntentEntry]:
    """``read_intent`` for text already read: the entries, or the first mistake raised."""
    entries: list[IntentEntry] = []
    for read in parse_intent_entries(text, path):
        if isinstance(read, IntentError):
            raise read
        entries.append(read)
    return entries


def parse_intent_entries(text: str, path: str = "<intent>") -> list[IntentEntry | IntentError]:
    """Each entry of an intent file, in order: read, or the one mistake that kept it from being read.

    An entry's mistake is its own (the pytest plugin makes it a failing test beside the others); only
    a file that cannot be read as a whole -- not YAML, a top level that is neither a list nor
    ``paths:``, an unknown top-level key -- raises ``IntentError``. An entry stating the path, or the
    name, of an earlier one is the later one's mistake.
    """
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise IntentError(path, yaml_error_text(exc)) from None
    except RecursionError:
        raise IntentError(path, "the YAML is nested too deeply to be an intent file") from None
    nodes = _entry_nodes(root)
    lines = [node.start_mark.line + 1 for node in nodes]
    if data is None:
        return []
    top = _duplicate_key(root, deep=False)
    if top is not None:
        raise IntentError(path, f"line {top[1]}: key {top[0]!r} appears twice (YAML would keep only the last)",
                          field=top[0])
    if isinstance(data, dict):
        unknown = sorted(str(k) for k in data if k != "paths")
        if unknown:
            raise IntentError(path, f"unknown top-level field {unknown[0]!r}: an intent file is a list of paths, or a "
                                    "mapping with `paths:`", field=unknown[0])
        data = data.get("paths")
        if data is None:
            return []
    if not isinstance(data, list):
        raise IntentError(path, f"expected a list of paths (or `paths:` holding one), got {type_name(data)}")
    read: list[IntentEntry | IntentError] = []
    seen_names: dict[str, int] = {}
    seen_paths: dict[tuple[Any, ...], int] = {}
    for index, raw in enumerate(data):
        try:
            entry = _entry(raw, path, index, lines[index] if index < len(lines) else None)
        except IntentError as exc:
            read.append(exc)
            continue
        twice = _duplicate_key(nodes[index]) if index < len(nodes) else None
        if twice is not None:
            read.append(entry.error(f"key {twice[0]!r} appears twice; YAML would keep only the last", twice[0]))
            continue
        same = (entry.source, entry.destination, entry.port, entry.protocol, entry.http, tuple(entry.headers.items()),
                entry.host, entry.dns, entry.qtype)
        if same in seen_paths:
            read.append(entry.error(f"the same path as entry {seen_paths[same]}: state each path once"))
        elif entry.name in seen_names:
            read.append(entry.error(f"the name is also entry {seen_names[entry.name]}'s: every entry's test id must "
                                    "be unique", "name" if entry.named else ""))
        else:
            seen_names[entry.name] = index
            seen_paths[same] = index
            read.append(entry)
    return read


def _entry_nodes(root: yaml.Node | None) -> list[yaml.Node]:
    """Each entry's node in the composed YAML (for its line, and keys written twice)."""
    node = root
    if isinstance(node, yaml.MappingNode):
        node = next((value for key, value in node.value if getattr(key, "value", None) == "paths"), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return list(node.value)


def _duplicate_key(node: yaml.Node | None, *, deep: bool = True) -> tuple[str, int] | None:
    """The first mapping key written twice in ``node`` (and, when ``deep``, below it), with its line:
    PyYAML keeps the last silently, so ``verdict: allowed`` then ``verdict: dropped`` would test one."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            text = str(getattr(key, "value", ""))
            if text in seen:
                return text, key.start_mark.line + 1
            seen.add(text)
            found = _duplicate_key(value) if deep else None
            if found is not None:
                return found
    elif isinstance(node, yaml.SequenceNode) and deep:
        for item in node.value:
            found = _duplicate_key(item)
            if found is not None:
                return found
    return None


def _entry(raw: Any, path: str, index: int, line: int | None) -> IntentEntry:
    def fail(message: str, field_: str = "", name: str | None = None) -> IntentError:
        return IntentError(path, message, index=index, line=line, name=name, field=field_)

    if not isinstance(raw, dict):
        raise fail(f"expected a mapping with from, to, verdict, ..., got {type_name(raw)}")
    given_name = raw.get("name")
    if given_name is not None and (not isinstance(given_name, str) or not given_name.strip()):
        raise fail(f"expected a non-empty string, got {type_name(given_name)}", "name")
    label = given_name.strip() if isinstance(given_name, str) else None

    def bad(message: str, field_: str) -> IntentError:
        return fail(message, field_, label)

    for key in raw:
        if key not in ENTRY_KEYS:
            raise bad(f"unknown field {key!r} (known fields here: {', '.join(ENTRY_KEYS)})", str(key))

    for required in ("from", "to", "verdict"):
        if required not in raw:
            raise bad("missing required field", required)
    source = _endpoint_text(raw["from"], "from", bad)
    destination = _endpoint_text(raw["to"], "to", bad)
    verdict = _verdict(raw["verdict"], bad)
    port = raw.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int | str)):
        raise bad(f"expected a port number or the destination's port name, got {type_name(port)}", "port")
    if isinstance(port, int) and not 1 <= port <= 65535:
        raise bad(f"expected a port from 1 to 65535, got {port}", "port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    protocol = raw.get("protocol")
    if protocol is not None:
        if not isinstance(protocol, str) or protocol.upper() not in _PROTOCOLS:
            raise bad(f"expected one of {', '.join(_PROTOCOLS)}, got {protocol!r}", "protocol")
        protocol = protocol.upper()
    http, headers, host = _http(raw.get("http"), bad)
    dns = raw.get("dns")
    if dns is not None and (not isinstance(dns, str) or not dns):
        raise bad(f"expected a DNS name to query, got {type_name(dns)}", "dns")
    if http is not None and dns is not None:
        raise bad("an entry is an HTTP request or a DNS query, not both", "dns")
    qtype = raw.get("qtype", "A")
    if not isinstance(qtype, str) or qtype.upper() not in DNS_QTYPES:
        raise bad(f"expected one of {', '.join(sorted(DNS_QTYPES))}, got {qtype!r}", "qtype")
    if qtype.upper() != "A" and dns is None:
        raise bad("a query type needs a `dns:` name to query", "qtype")
    live_only = raw.get("live-only", False)
    if not isinstance(live_only, bool):
        raise bad(f"expected true or false, got {type_name(live_only)}", "live-only")
    review = raw.get("review")
    if review is not None and not isinstance(review, str):
        raise bad(f"expected a note (a string), got {type_name(review)}", "review")
    made = _made_name(source, destination, port, protocol, http, dns)
    return IntentEntry(path=path, index=index, line=line, name=label or made, source=source, destination=destination,
                       verdict=verdict, port=port, protocol=protocol, http=http, headers=headers, host=host, dns=dns,
                       qtype=qtype.upper(), live_only=live_only, review=review, named=label is not None)


def _endpoint_text(raw: Any, key: str, bad: _Bad) -> str:
    """An end as text: ``ns/name``, ``world``, ``api.example.com``, ``10.0.0.0/8``, ... or the flow file's mapping."""
    if isinstance(raw, dict):
        known = ("entity", "fqdn", "ip", "cidr")
        kinds = [k for k in raw if k in known]
        extra = [k for k in raw if k not in known]
        if extra or not kinds or not all(isinstance(v, str) for v in raw.values()):
            raise bad("expected namespace/name, an entity, an FQDN, an address or a block, as text or as "
                      "{entity|fqdn: NAME, ip: IP} / {cidr: BLOCK}", key)
        if "cidr" in raw:
            return f"cidr:{raw['cidr']}"
        if kinds == ["ip"]:
            return f"ip:{raw['ip']}"
        kind = "entity" if "entity" in raw else "fqdn"
        return f"{kind}:{raw[kind]}" + (f"@{raw['ip']}" if "ip" in raw else "")
    if not isinstance(raw, str) or not raw.strip():
        raise bad(f"expected namespace/name, an entity, an FQDN, an address or a block, got {type_name(raw)}", key)
    text = raw.strip()

    def fail(_field: str, message: str) -> InputError:
        return bad(message, key)

    parse_endpoint(text, key, fail, allow_fqdn=key == "to")
    return text


def _verdict(raw: Any, bad: _Bad) -> Verdict:
    names = ", ".join(v.value for v in EXPECTABLE_VERDICTS)
    if not isinstance(raw, str):
        raise bad(f"expected one of {names}, got {type_name(raw)}", "verdict")
    try:
        verdict = Verdict.parse(raw)
    except ValueError:
        raise bad(f"unknown verdict {raw!r}; expected one of {names}", "verdict") from None
    if verdict not in EXPECTABLE_VERDICTS:
        raise bad(f"{raw!r} is not something to expect; expected one of {names} (`live-only: true` marks a path only "
                  "a cluster can settle)", "verdict")
    return verdict


def _check_method(method: str, bad: _Bad, field: str) -> None:
    """A typo is named at the field it is in; a method that is no token is left to ``parse_http``."""
    if http_method_typo(method) is not None:
        raise bad(http_method_mistake(method) or "", field)


def _http(raw: Any, bad: _Bad) -> tuple[str | None, dict[str, str], str | None]:
    """``"GET /cart"`` or ``{method, path, headers, host}`` -> (``"GET /cart"``, headers, host)."""
    if raw is None:
        return None, {}, None
    if isinstance(raw, str):
        _check_method(raw.split()[0] if raw.split() else "", bad, "http")
        try:
            method, path = parse_http(raw)
        except ExpectationError:
            raise bad(f"expected 'METHOD /path' (e.g. 'GET /cart'), got {raw!r}", "http") from None
        return f"{method} {path}", {}, None
    if not isinstance(raw, dict):
        raise bad(f"expected 'METHOD /path' or {{method, path, headers, host}}, got {type_name(raw)}", "http")
    for key in raw:
        if key not in _HTTP_KEYS:
            raise bad(f"unknown field {key!r} (known fields here: {', '.join(_HTTP_KEYS)})", f"http.{key}")
    method = raw.get("method", "GET")
    path = raw.get("path", "/")
    if not isinstance(method, str) or not isinstance(path, str):
        raise bad("method and path are strings", "http")
    _check_method(method, bad, "http.method")
    try:
        method, path = parse_http(f"{method} {path}")
    except ExpectationError:
        raise bad(f"expected an HTTP method and a path starting with '/', got {method!r} {path!r}", "http") from None
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise bad("expected a mapping of header names to strings (quote numbers)", "http.headers")
    host = raw.get("host")
    if host is not None and (not isinstance(host, str) or not host):
        raise bad(f"expected a host name, got {type_name(host)}", "http.host")
    return f"{method} {path}", headers, host


def new_entry(source: str, destination: str, verdict: Verdict, *, port: int | None = None,
              protocol: str | None = None, http: str | None = None, headers: Mapping[str, str] | None = None,
              host: str | None = None, dns: str | None = None, live_only: bool = False,
              review: str | None = None) -> IntentEntry:
    """An entry to write (``flowcheck init``), named by its path like an entry without a ``name``."""
    made = _made_name(source, destination, port, protocol, http, dns)
    return IntentEntry(path="<new>", index=0, line=None, name=made, source=source, destination=destination,
                       verdict=verdict, port=port, protocol=protocol, http=http, headers=dict(headers or {}),
                       host=host, dns=dns, live_only=live_only, review=review)


def _made_name(source: str, destination: str, port: int | str | None, protocol: str | None, http: str | None,
               dns: str | None) -> str:
    """The test id of an entry without a name: ``shop/web -> shop/cart TCP/8080 GET /cart``. A port given by
    name and no protocol is shown as the name: its protocol is the destination's, which the id does not know."""
    if protocol is None and http is None and isinstance(port, str) and not port.isdigit():
        transport = port  # an HTTP request is over TCP whatever the name
    else:
        protocol = protocol or ("UDP" if dns is not None else "TCP")
        transport = f"{protocol}/{port}" if port is not None else (f"{protocol}/53" if dns else protocol)
    text = f"{source} -> {destination} {transport}"
    if http:
        text += f" {http}"
    if dns:
        text += f" DNS {dns}"
    return text


def render_intent(entries: Sequence[IntentEntry], header: str = "") -> str:
    """An intent file holding ``entries`` (``header``: comment lines put first)."""
    body = yaml.safe_dump({"paths": [e.to_yaml() for e in entries]}, sort_keys=False, default_flow_style=False,
                          width=120, allow_unicode=True)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + body
