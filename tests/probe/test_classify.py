"""Unit tests of ``flowcheck.probe.classify``: raw probe facts → verdict, including every ambiguous case.

The Cilium facts used as fixtures (Envoy's 403 reply, the DNS proxy's REFUSED) come from cilium/proxy
``cilium/l7policy.cc`` and cilium/cilium ``Documentation/contributing/development/debugging.rst``
(as ``flowcheck/probe/classify.py`` cites them).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowcheck.probe.classify import ClassifierSettings, classify
from flowcheck.probe.plan import Outcome, ProbeKind, ProbeResult
from flowcheck.verdict import Verdict

# What Cilium's Envoy answers on an L7 denial (recorded in Cilium's docs; see the module docstring).
ENVOY_403_HEADERS = {"content-length": "15", "content-type": "text/plain", "server": "envoy"}
ENVOY_403_BODY = "Access denied\r\n"


def result(kind: str, outcome: str = "ok", **fields: Any) -> ProbeResult:
    return ProbeResult(id="p", kind=ProbeKind(kind), outcome=Outcome(outcome), **fields)


def http(status: int, body: str = "", identity: str | None = None, headers: dict[str, str] | None = None
         ) -> ProbeResult:
    """An HTTP answer; ``identity`` is what a flowcheck server reported, ``headers`` the response headers."""
    return result("http", status=status, body=body, server=identity, headers=headers or {}, connected=True)


def test_tcp_connect_is_allowed() -> None:
    assert classify(result("tcp", connected=True)).verdict is Verdict.ALLOWED


def test_timeout_without_connection_is_dropped() -> None:
    for kind in ("tcp", "http", "udp", "dns"):
        got = classify(result(kind, "timeout", elapsed_s=1.0))
        assert got.verdict is Verdict.DROPPED, kind
        assert "no answer" in got.detail


def test_timeout_after_connecting_is_an_error_not_a_drop() -> None:
    assert classify(result("http", "timeout", connected=True)).verdict is Verdict.ERROR


def test_rst_is_refused_never_dropped() -> None:
    got = classify(result("tcp", "refused", errno="ECONNREFUSED", detail="ECONNREFUSED: Connection refused"))
    assert got.verdict is Verdict.REFUSED
    assert "set-up problem" in got.detail


def test_icmp_port_unreachable_on_udp_is_refused() -> None:
    assert classify(result("udp", "refused", errno="ECONNREFUSED")).verdict is Verdict.REFUSED


def test_unreachable_is_an_error_unless_the_cluster_answers_denials_with_icmp() -> None:
    unreachable = result("tcp", "unreachable", errno="EHOSTUNREACH")
    assert classify(unreachable).verdict is Verdict.ERROR
    assert classify(unreachable, unreachable_is_drop=True).verdict is Verdict.DROPPED


def test_agent_error_stays_an_error_with_its_detail() -> None:
    got = classify(result("http", "error", detail="not an HTTP response: 'garbage'"))
    assert got.verdict is Verdict.ERROR
    assert "garbage" in got.detail


def test_answer_from_the_flowcheck_server_is_allowed() -> None:
    got = classify(http(200, '{"server":"default/api"}', identity="default/api"))
    assert got.verdict is Verdict.ALLOWED
    assert "default/api" in got.detail


def test_answer_from_another_flowcheck_server_than_expected_is_an_error() -> None:
    answer = http(200, '{"server":"default/other"}', identity="default/other")
    assert classify(answer, expected_server="default/api").verdict is Verdict.ERROR
    assert classify(answer, expected_server="default/other").verdict is Verdict.ALLOWED


def test_envoy_403_access_denied_is_l7_denied() -> None:
    got = classify(http(403, ENVOY_403_BODY, headers=ENVOY_403_HEADERS))
    assert got.verdict is Verdict.L7_DENIED
    assert "envoy" in got.detail


def test_configured_403_message_is_recognised() -> None:
    answer = http(403, "Nope\r\n", headers=ENVOY_403_HEADERS)
    assert classify(answer).verdict is Verdict.ERROR
    assert classify(answer, http_403_message="Nope").verdict is Verdict.L7_DENIED


@pytest.mark.parametrize("body", ["Forbidden", "Access denied", "access denied\r\n", "<html>403</html>", ""])
def test_403_without_ciliums_exact_body_is_an_error(body: str) -> None:
    got = classify(http(403, body, headers={"server": "nginx"}))
    assert got.verdict is Verdict.ERROR
    assert "not Cilium's denial" in got.detail


@pytest.mark.parametrize("status", [502, 503, 504])
def test_proxy_failure_status_is_an_error(status: int) -> None:
    answer = http(status, "upstream connect error or disconnect/reset before headers",
                  headers={"server": "envoy"})
    assert classify(answer).verdict is Verdict.ERROR
    assert classify(answer, foreign_http_is_allowed=True).verdict is Verdict.ERROR


def test_answer_from_a_non_flowcheck_server_is_an_error_by_default() -> None:
    answer = http(200, "<html>hello</html>", headers={"server": "nginx"})
    got = classify(answer)
    assert got.verdict is Verdict.ERROR
    assert "not a flowcheck probe server" in got.detail
    assert classify(answer, foreign_http_is_allowed=True).verdict is Verdict.ALLOWED


def test_flowcheck_identity_with_a_non_200_status_is_an_error() -> None:
    assert classify(http(500, '{"server":"x"}', identity="x")).verdict is Verdict.ERROR


def test_dns_refused_is_l7_denied() -> None:
    assert classify(result("dns", rcode="REFUSED")).verdict is Verdict.L7_DENIED


@pytest.mark.parametrize("rcode", ["NOERROR", "NXDOMAIN"])
def test_dns_answer_that_reached_the_resolver_is_allowed(rcode: str) -> None:
    assert classify(result("dns", rcode=rcode)).verdict is Verdict.ALLOWED


@pytest.mark.parametrize("rcode", ["SERVFAIL", "FORMERR", "NOTIMP", "RCODE12"])
def test_other_dns_rcodes_are_errors(rcode: str) -> None:
    assert classify(result("dns", rcode=rcode)).verdict is Verdict.ERROR


def test_dns_name_error_reject_mode_swaps_which_rcode_means_denied() -> None:
    assert classify(result("dns", rcode="NXDOMAIN"), dns_denied_rcode="NXDOMAIN").verdict is Verdict.L7_DENIED
    assert classify(result("dns", rcode="REFUSED"), dns_denied_rcode="NXDOMAIN").verdict is Verdict.ERROR


def test_udp_echo_is_allowed_and_checks_identity_when_asked() -> None:
    echo = result("udp", reply='{"server":"default/api","payload":"ping"}', server="default/api")
    assert classify(echo).verdict is Verdict.ALLOWED
    assert classify(echo, expected_server="default/api").verdict is Verdict.ALLOWED
    assert classify(echo, expected_server="default/web").verdict is Verdict.ERROR


@given(
    kind=st.sampled_from(list(ProbeKind)),
    outcome=st.sampled_from([o for o in Outcome if o is not Outcome.OK]),
    connected=st.sampled_from([None, True, False]),
    detail=st.text(max_size=20),
)
def test_no_failed_probe_is_ever_allowed_or_l7_denied(kind: ProbeKind, outcome: Outcome, connected: bool | None,
                                                      detail: str) -> None:
    got = classify(ProbeResult(id="p", kind=kind, outcome=outcome, connected=connected, detail=detail))
    assert got.verdict not in (Verdict.ALLOWED, Verdict.L7_DENIED)


@given(status=st.integers(100, 599), body=st.text(max_size=40), server_header=st.sampled_from(["envoy", "nginx", ""]))
def test_http_answers_without_identity_are_only_denied_when_exactly_envoys_403(status: int, body: str,
                                                                                server_header: str) -> None:
    got = classify(http(status, body, headers={"server": server_header} if server_header else {}))
    if status == 403 and body == ENVOY_403_BODY:
        assert got.verdict is Verdict.L7_DENIED
    else:
        assert got.verdict is Verdict.ERROR


def test_several_configured_403_bodies_are_each_a_denial_and_nothing_else_is() -> None:
    """Nodes with different ``http-403-msg`` overrides: a 403 with any of their bodies is Cilium's."""
    settings = ClassifierSettings(http_403_messages=("Access denied", "Nope"))
    for body in (ENVOY_403_BODY, "Nope\r\n"):
        got = classify(http(403, body, headers=ENVOY_403_HEADERS), http_403_message=settings.http_403_messages)
        assert got.verdict is Verdict.L7_DENIED, body
    other = classify(http(403, "Forbidden\r\n"), http_403_message=settings.http_403_messages)
    assert other.verdict is Verdict.ERROR
    assert "'Access denied\\r\\n' or 'Nope\\r\\n'" in other.detail


def test_an_identity_check_standing_for_a_tcp_connect_needs_the_expected_server() -> None:
    """Issue 17.5: a bare connect cannot tell who accepted it; the HTTP identity check can."""
    ours = http(200, '{"server":"default/api"}', identity="default/api")
    got = classify(ours, expected_server="default/api", l4_intent=True)
    assert got.verdict is Verdict.ALLOWED
    assert got.detail.startswith("TCP connected;") and "identity checked over HTTP" in got.detail
    impostor = http(200, '{"server":"default/impostor"}', identity="default/impostor")
    got = classify(impostor, expected_server="default/api", l4_intent=True)
    assert got.verdict is Verdict.ERROR
    assert "answered by server 'default/impostor', expected 'default/api'" in got.detail
    not_http = result("http", "error", connected=True, detail="the connection closed before any response")
    assert classify(not_http, expected_server="default/api", l4_intent=True).verdict is Verdict.ERROR


def test_ciliums_403_to_an_identity_check_still_shows_the_tcp_path_allowed() -> None:
    """On an L7-policied port the proxy accepts the connection and judges only the request."""
    got = classify(http(403, ENVOY_403_BODY, headers=ENVOY_403_HEADERS), expected_server="default/api",
                   l4_intent=True)
    assert got.verdict is Verdict.ALLOWED
    assert "refused by Cilium's L7 proxy" in got.detail
    assert classify(http(403, "Forbidden"), expected_server="default/api", l4_intent=True).verdict is Verdict.ERROR


def test_default_settings_are_ciliums_defaults() -> None:
    assert ClassifierSettings() == ClassifierSettings(("Access denied",), "REFUSED")
    assert "'Access denied'" in ClassifierSettings().describe()
