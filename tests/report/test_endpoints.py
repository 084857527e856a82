"""Telling the endpoints of a report record apart: workloads, entities, FQDNs, addresses."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowcheck.report.endpoints import EndpointKind, ReportEndpoint, parse_endpoint

W, E, F, C, OTHER = EndpointKind.WORKLOAD, EndpointKind.ENTITY, EndpointKind.FQDN, EndpointKind.CIDR, EndpointKind.OTHER


@pytest.mark.parametrize(("text", "expected"), [
    ("default/my-api", ReportEndpoint("default/my-api", W, "my-api", namespace="default")),
    ("kube-system/coredns.v2", ReportEndpoint("kube-system/coredns.v2", W, "coredns.v2", namespace="kube-system")),
    ("world", ReportEndpoint("world", E, "world")),
    ("world (1.1.1.1)", ReportEndpoint("world (1.1.1.1)", E, "world", address="1.1.1.1")),
    ("kube-apiserver", ReportEndpoint("kube-apiserver", E, "kube-apiserver")),
    ("remote-node (2001:db8::1)", ReportEndpoint("remote-node (2001:db8::1)", E, "remote-node", address="2001:db8::1")),
    ("api.example.com", ReportEndpoint("api.example.com", F, "api.example.com")),
    ("api.example.com (203.0.113.7)",
     ReportEndpoint("api.example.com (203.0.113.7)", F, "api.example.com", address="203.0.113.7")),
    ("203.0.113.7", ReportEndpoint("203.0.113.7", C, "203.0.113.7")),
    ("10.0.0.0/8", ReportEndpoint("10.0.0.0/8", C, "10.0.0.0/8")),
    ("2001:db8::/32", ReportEndpoint("2001:db8::/32", C, "2001:db8::/32")),
    # not guessed into a kind:
    ("a/b/c", ReportEndpoint("a/b/c", OTHER, "a/b/c")),
    ("two words", ReportEndpoint("two words", OTHER, "two words")),
    ("default/web (10.0.0.1)", ReportEndpoint("default/web (10.0.0.1)", OTHER, "default/web (10.0.0.1)")),
    ("world (not-an-ip)", ReportEndpoint("world (not-an-ip)", OTHER, "world (not-an-ip)")),
])
def test_endpoint_text_is_classified(text: str, expected: ReportEndpoint) -> None:
    assert parse_endpoint(text) == expected


def test_a_workload_node_is_labelled_by_its_name_and_others_by_their_whole_text() -> None:
    assert parse_endpoint("default/my-api").label == "my-api"
    assert parse_endpoint("world (1.1.1.1)").label == "world (1.1.1.1)"


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@given(namespace=LABEL, name=st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True))
def test_every_namespace_and_name_is_a_workload(namespace: str, name: str) -> None:
    endpoint = parse_endpoint(f"{namespace}/{name}")
    assert (endpoint.kind, endpoint.namespace, endpoint.name) == (W, namespace, name)


@given(st.ip_addresses())
def test_every_address_is_an_address_node(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert parse_endpoint(str(address)).kind is C
    assert parse_endpoint(f"world ({address})").address == str(address)


@given(st.text(max_size=60))
def test_any_text_gets_a_kind_and_keeps_its_text(text: str) -> None:
    endpoint = parse_endpoint(text)
    assert endpoint.text == text
    assert endpoint.kind in EndpointKind
    assert (endpoint.namespace is not None) == (endpoint.kind is W)
