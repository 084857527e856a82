"""From what the agent observed to what policy did: one ``ProbeResult`` → one ``Classification``.

The agent reports raw facts (docs/contracts.md, "The probe agent"); this module is the single
place that decides what they mean (docs/contracts.md, "Verdicts"). The rule it never breaks: **an
observation that does not positively show a verdict is not a verdict.** Anything ambiguous becomes
``error`` (or ``refused``), with a detail that says what was seen and why it was not taken as a
verdict -- those can never count as a pass, so an ambiguity shows up as a failure to look at, not as
a silent pass of the wrong kind.

The rules, with the facts behind them (Cilium's behaviour as documented in its docs and source:
``cilium/l7policy.cc`` in cilium/proxy, ``pkg/fqdn/dnsproxy/proxy.go`` and
``Documentation/contributing/development/debugging.rst`` in cilium/cilium, cilium-cli's
``connectivity/check`` expectations):

* ``timeout`` (nothing answered the SYN / no datagram came back) → ``dropped``. Cilium drops denied
  L3/L4 traffic silently by default: no RST, no ICMP; clients time out (cilium-cli expects curl exit 28).
  A timeout *after* a stream connection was established is not a drop (the agent reports that as an
  error; this module re-checks ``connected`` defensively).
* ``refused`` (RST, or ICMP port unreachable for UDP) → ``refused``: nothing listens there, or a
  non-Cilium firewall rejects -- a set-up problem, never a policy verdict.
* ``unreachable`` (no route, ICMP host/network unreachable) → ``error`` by default. Cilium does not
  answer denials with ICMP unless it runs with ``--policy-deny-response=icmp`` (IPv4 pod egress only),
  while a missing route, a deleted pod or a dead node look exactly the same from the client; counting
  them as ``dropped`` would let a broken set-up pass every "should be dropped" check. A cluster that does
  run with ICMP deny responses opts in with ``unreachable_is_drop=True``.
* TCP ``ok`` → ``allowed`` (connected at L3/L4). A TCP probe cannot see L7 policy: on an L7-policied
  port Cilium's proxy accepts the connection and only judges requests; use an HTTP probe there. A bare
  connect cannot tell *who* accepted it either, so where the destination is a flowcheck probe server the
  harness sends an HTTP request instead and classifies it with ``l4_intent=True``: the server's identity
  (``expected_server``) → ``allowed``; Cilium's own 403 → ``allowed`` too (the connection reached
  Cilium's L7 proxy, which only judged the request); anything else → ``error`` (another server answered).
* UDP ``ok`` → ``allowed``; with ``expected_server``, the echo must carry that identity.
* HTTP (``ok``: some HTTP response was read):

  - ``403`` with body ``Access denied`` + CRLF (Envoy's local reply from Cilium's ``cilium.l7policy``
    filter; ``server: envoy``, ``content-type: text/plain``, ``content-length: 15``) → ``l7-denied``.
    Clusters that change the text with ``--http-403-msg`` pass it as ``http_403_message``.
  - a flowcheck probe server's JSON identity with ``200`` → ``allowed`` (with ``expected_server``, only
    that server: an answer from another workload means the traffic went somewhere else → ``error``).
  - anything else → ``error``, never a verdict: a 403 with another body is some other component's
    refusal (an ingress, an app-level auth), not Cilium's; a 502/503/504 is typically Envoy itself
    failing to reach the upstream ("upstream connect error ...") after policy *allowed* the request;
    a 200 from a server without the flowcheck identity means a different application answered, so the
    probe does not show that policy let the request through to the intended workload. When the
    destination really is a foreign application (a workload marked ``existing``), pass
    ``foreign_http_is_allowed=True``: then any response except the L7 denial and a 502/503/504 is
    ``allowed`` (something past policy answered).
* DNS (``ok``: an answer with our id and question came back):

  - ``REFUSED`` → ``l7-denied``: Cilium's DNS proxy answers denied queries with REFUSED (rcode 5) by
    default. It can be configured to answer NXDOMAIN instead (``--tofqdns-dns-reject-response-code=
    nameError``); such clusters pass ``dns_denied_rcode="NXDOMAIN"``, and REFUSED is then an ``error``.
    (The DNS proxy also answers REFUSED on some internal errors; a probe cannot tell those apart.)
  - ``NOERROR`` and ``NXDOMAIN`` → ``allowed``: the query reached a resolver that answered it; whether
    the name exists is not a policy matter.
  - ``SERVFAIL`` → ``error``: the resolver got the query but could not answer it (an upstream failure,
    or the DNS proxy's own error path, which uses SERVFAIL). That is neither a clean pass nor a denial;
    treating it as ``allowed`` would hide a broken DNS path behind a green check.
  - any other rcode (FORMERR, NOTIMP, ...) → ``error``.
* the agent's ``error`` → ``error``, with its detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowcheck.probe.plan import Outcome, ProbeKind, ProbeResult
from flowcheck.verdict import Verdict

CILIUM_HTTP_403_MESSAGE = "Access denied"  # cilium/proxy l7policy.cc default; Envoy appends CRLF
CILIUM_DNS_DENIED_RCODE = "REFUSED"  # tofqdns-dns-reject-response-code default "refused"
PROXY_FAILURE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class ClassifierSettings:
    """What a cluster's Cilium answers a denial with, where that is configurable: the L7 proxy's 403
    body(ies) (agent option ``http-403-msg``) and the DNS proxy's reject rcode
    (``tofqdns-dns-reject-response-code``: ``refused`` → ``REFUSED``, ``nameError`` → ``NXDOMAIN``).
    The defaults are Cilium's defaults."""

    http_403_messages: tuple[str, ...] = (CILIUM_HTTP_403_MESSAGE,)
    dns_denied_rcode: str = CILIUM_DNS_DENIED_RCODE

    def describe(self) -> str:
        bodies = " or ".join(repr(m) for m in self.http_403_messages)
        return f"HTTP 403 body {bodies}, DNS reject rcode {self.dns_denied_rcode}"


DEFAULT_SETTINGS = ClassifierSettings()


@dataclass(frozen=True, slots=True)
class Classification:
    """What one probe showed: a verdict (or the non-verdict outcomes ``refused``/``error``) and why."""

    verdict: Verdict
    detail: str


def classify(
    result: ProbeResult,
    *,
    expected_server: str | None = None,
    http_403_message: str | Sequence[str] = CILIUM_HTTP_403_MESSAGE,
    dns_denied_rcode: str = CILIUM_DNS_DENIED_RCODE,
    unreachable_is_drop: bool = False,
    foreign_http_is_allowed: bool = False,
    l4_intent: bool = False,
) -> Classification:
    """Classify one probe result (its ``kind`` comes from the plan). See the module docstring for the rules.

    ``http_403_message`` is the body (or the bodies) Cilium's proxy denies with; ``l4_intent``: the
    result is an HTTP identity check standing in for a TCP connect (see the module docstring)."""
    where = f" ({result.detail})" if result.detail else ""
    match result.outcome:
        case Outcome.ERROR:
            return Classification(Verdict.ERROR, f"the probe failed{where}")
        case Outcome.REFUSED:
            return Classification(
                Verdict.REFUSED,
                f"actively refused (RST or ICMP port unreachable){where}: nothing listens there or a non-Cilium "
                "firewall rejects; Cilium itself drops silently, so this is a set-up problem, not a verdict")
        case Outcome.UNREACHABLE:
            if unreachable_is_drop:
                return Classification(Verdict.DROPPED, f"ICMP unreachable / no route{where}, counted as a drop "
                                                       "because the cluster answers policy denials with ICMP")
            return Classification(
                Verdict.ERROR,
                f"unreachable{where}: no route or ICMP unreachable; Cilium drops denials silently by default, "
                "so this points at a missing pod, route or node (pass unreachable_is_drop=True for clusters "
                "running --policy-deny-response=icmp)")
        case Outcome.TIMEOUT:
            if result.connected:
                return Classification(Verdict.ERROR, "connected, then no answer: a stuck server, not a drop")
            return Classification(Verdict.DROPPED, f"no answer within the timeout{_elapsed(result)}: "
                                                   "silently dropped")
        case Outcome.OK:
            pass
    match result.kind:
        case ProbeKind.TCP:
            return Classification(Verdict.ALLOWED, "TCP connected")
        case ProbeKind.UDP:
            return _classify_udp(result, expected_server)
        case ProbeKind.HTTP:
            messages = (http_403_message,) if isinstance(http_403_message, str) else tuple(http_403_message)
            http = _classify_http(result, expected_server, messages, foreign_http_is_allowed)
            return _as_l4(http) if l4_intent else http
        case ProbeKind.DNS:
            return _classify_dns(result, dns_denied_rcode)


def _elapsed(result: ProbeResult) -> str:
    return f" ({result.elapsed_s:.2f} s)" if result.elapsed_s is not None else ""


def _identity_check(result: ProbeResult, expected_server: str | None, what: str) -> Classification:
    if expected_server is not None and result.server != expected_server:
        answered = f"server {result.server!r}" if result.server is not None else "a server without flowcheck identity"
        return Classification(Verdict.ERROR, f"{what} answered by {answered}, expected {expected_server!r}: "
                                             "the traffic reached a different workload")
    by = f" by {result.server!r}" if result.server is not None else ""
    return Classification(Verdict.ALLOWED, f"{what} answered{by}")


def _classify_udp(result: ProbeResult, expected_server: str | None) -> Classification:
    return _identity_check(result, expected_server, "UDP datagram")


def _as_l4(http: Classification) -> Classification:
    """An HTTP identity check read as the TCP connect it stands for (``l4_intent``)."""
    if http.verdict is Verdict.L7_DENIED:
        return Classification(Verdict.ALLOWED, f"TCP connected; the identity check was refused by Cilium's L7 proxy "
                                               f"({http.detail}), so the connection reached the proxy in front of "
                                               "the destination: allowed at L3/L4")
    if http.verdict is Verdict.ALLOWED:
        return Classification(Verdict.ALLOWED, f"TCP connected; {http.detail} (identity checked over HTTP)")
    return http


def _denied_body(message: str) -> str:
    """Envoy appends CRLF to the configured 403 text unless it already ends with one (cilium/proxy)."""
    return message if message.endswith("\r\n") else message + "\r\n"


def _classify_http(
    result: ProbeResult, expected_server: str | None, http_403_messages: tuple[str, ...],
    foreign_http_is_allowed: bool
) -> Classification:
    status = result.status
    body = result.body or ""
    server_header = result.headers.get("server")
    via = f", server: {server_header}" if server_header else ""
    denied_bodies = [_denied_body(m) for m in http_403_messages]
    if status == 403 and body in denied_bodies:
        message = http_403_messages[denied_bodies.index(body)]
        return Classification(Verdict.L7_DENIED, f"HTTP 403 {message!r}{via}: denied by Cilium's L7 proxy")
    if result.server is not None:
        if status != 200:
            return Classification(Verdict.ERROR, f"HTTP {status} carrying the flowcheck identity {result.server!r}; "
                                                 "the probe server only answers 200, something rewrote it")
        return _identity_check(result, expected_server, "HTTP request")
    if status == 403:
        expected = " or ".join(repr(b) for b in denied_bodies)
        return Classification(Verdict.ERROR, f"HTTP 403 whose body {body[:60]!r} is not Cilium's denial "
                                             f"{expected}{via}: some other component refused it")
    if status in PROXY_FAILURE_STATUSES:
        return Classification(Verdict.ERROR, f"HTTP {status}{via} {body[:80]!r}: a proxy could not reach the "
                                             "backend (Envoy's 'upstream connect error' when policy allowed it)")
    if foreign_http_is_allowed and expected_server is None:
        return Classification(Verdict.ALLOWED, f"HTTP {status}{via} from the (foreign) destination application")
    return Classification(Verdict.ERROR, f"HTTP {status}{via} from a server that is not a flowcheck probe server: "
                                         "cannot tell whether policy let the request reach the intended workload")


def _classify_dns(result: ProbeResult, dns_denied_rcode: str) -> Classification:
    rcode = result.rcode or "?"
    count = len(result.answers)
    if rcode == dns_denied_rcode:
        return Classification(Verdict.L7_DENIED, f"DNS {rcode}: denied by Cilium's DNS proxy")
    if rcode in ("NOERROR", "NXDOMAIN"):
        return Classification(Verdict.ALLOWED, f"DNS {rcode} with {count} answer(s): the query reached the resolver")
    if rcode == "SERVFAIL":
        return Classification(Verdict.ERROR, "DNS SERVFAIL: the resolver got the query but could not answer it "
                                             "(upstream or proxy failure), neither allowed nor denied")
    return Classification(Verdict.ERROR, f"DNS {rcode}: an answer that is neither a resolution nor a denial")
