"""Parsing pieces shared by the NetworkPolicy and the Cilium parsers: label selectors, ports, CIDRs."""

from __future__ import annotations

import ipaddress
from typing import Any

from flowcheck.model import fields as f
from flowcheck.model.identity import NAMESPACE_LABEL
from flowcheck.model.policy import CidrPeer, IPNetwork
from flowcheck.model.selectors import K8S_SOURCE, LabelSelector, Operator, Requirement, split_source

_SELECTOR_KEYS = ("matchLabels", "matchExpressions")
_EXPRESSION_KEYS = ("key", "operator", "values")


def in_namespace(namespace: str) -> Requirement:
    """``k8s:io.kubernetes.pod.namespace=<namespace>``: what scopes a selector to one namespace."""
    return Requirement(K8S_SOURCE, NAMESPACE_LABEL, Operator.IN, frozenset({namespace}))


def in_any_namespace() -> Requirement:
    """``k8s:io.kubernetes.pod.namespace`` exists: every pod, in any namespace (never a reserved identity)."""
    return Requirement(K8S_SOURCE, NAMESPACE_LABEL, Operator.EXISTS)


def parse_selector(raw: Any, field_: str, fail: f.Fail, *, cilium_keys: bool,
                   key_prefix: str = "") -> LabelSelector:
    """A Kubernetes LabelSelector (matchLabels AND matchExpressions).

    ``cilium_keys``: keys may carry a Cilium source prefix (``k8s:``, ``reserved:``); without one
    they match any source. Otherwise (NetworkPolicy) keys are plain pod labels, i.e. ``k8s:``.
    ``key_prefix`` is prepended to every key (NetworkPolicy namespaceSelector keys become
    ``io.cilium.k8s.namespace.labels.<key>``, docs/semantics.md, "NetworkPolicy translation").
    """
    body = f.optional_mapping(raw, field_, fail)
    f.known_keys(body, field_, _SELECTOR_KEYS, fail)
    requirements: list[Requirement] = []

    def make_key(key: str) -> tuple[str, str]:
        if cilium_keys:
            source, bare = split_source(key)
        else:
            source, bare = K8S_SOURCE, key
        return source, key_prefix + bare

    labels_field = f.join(field_, "matchLabels")
    for key, value in f.string_map(body.get("matchLabels"), labels_field, fail).items():
        if not key:
            raise fail(labels_field, "label keys must not be empty")
        source, bare = make_key(key)
        requirements.append(Requirement(source, bare, Operator.IN, frozenset({value})))
    exprs_field = f.join(field_, "matchExpressions")
    for i, raw_expr in enumerate(f.optional_sequence(body.get("matchExpressions"), exprs_field, fail)):
        efield = f.join(exprs_field, i)
        expr = f.mapping(raw_expr, efield, fail)
        f.known_keys(expr, efield, _EXPRESSION_KEYS, fail)
        if "key" not in expr:
            raise fail(f.join(efield, "key"), "missing required field")
        if "operator" not in expr:
            raise fail(f.join(efield, "operator"), "missing required field")
        key = f.string(expr["key"], f.join(efield, "key"), fail)
        op_text = f.string(expr["operator"], f.join(efield, "operator"), fail)
        try:
            operator = Operator(op_text)
        except ValueError:
            raise fail(f.join(efield, "operator"),
                       f"expected one of In, NotIn, Exists, DoesNotExist, got {op_text!r}") from None
        values = f.optional_sequence(expr.get("values"), f.join(efield, "values"), fail)
        strings = frozenset(f.string(v, f.join(efield, f"values[{j}]"), fail, allow_empty=True)
                            for j, v in enumerate(values))
        if operator in (Operator.IN, Operator.NOT_IN) and not strings:
            raise fail(f.join(efield, "values"), f"operator {operator.value} needs at least one value")
        if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and strings:
            raise fail(f.join(efield, "values"), f"operator {operator.value} takes no values")
        source, bare = make_key(key)
        requirements.append(Requirement(source, bare, operator, strings))
    return LabelSelector(tuple(requirements))


def port_value(raw: Any, field_: str, fail: f.Fail) -> tuple[int, str | None]:
    """A port given as a number or a string: (number, None) or (0, name)."""
    if isinstance(raw, bool):
        raise fail(field_, "expected a port number or name, got a boolean")
    if isinstance(raw, int):
        return f.integer(raw, field_, fail, 0, 65535), None
    text = f.string(raw, field_, fail)
    if text.isdigit():
        return f.integer(int(text), field_, fail, 0, 65535), None
    if len(text) > 15 or not any(c.isalpha() for c in text) or not all(c.isalnum() or c == "-" for c in text):
        raise fail(field_, f"{text!r} is neither a port number nor a port name (IANA_SVC_NAME)")
    return 0, text.lower()


def parse_cidr(raw: Any, field_: str, fail: f.Fail) -> IPNetwork:
    text = f.string(raw, field_, fail)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise fail(field_, f"{text!r} is not a CIDR (such as 10.0.0.0/8)") from None


def parse_cidr_block(body: dict[str, Any], field_: str, fail: f.Fail, *, ip_block: bool) -> CidrPeer:
    """``{cidr, except}``: a NetworkPolicy ``ipBlock`` or a Cilium ``CIDRRule`` (keys already checked)."""
    if "cidr" not in body:
        raise fail(f.join(field_, "cidr"), "missing required field")
    network = parse_cidr(body["cidr"], f.join(field_, "cidr"), fail)
    items = f.optional_sequence(body.get("except"), f.join(field_, "except"), fail)
    excepts = tuple(parse_cidr(e, f"{field_}.except[{i}]", fail) for i, e in enumerate(items))
    return CidrPeer(network, excepts, ip_block=ip_block)
