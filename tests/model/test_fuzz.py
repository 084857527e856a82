"""Fuzzing the loaders through the CLI: malformed documents never produce a traceback.

Every generated document is a valid one (this repository's policies and topology) with one part
replaced by junk, deleted, or given an unknown sibling. ``flowcheck plan`` must then either succeed
(exit 0: the mutation happened to be valid) or exit 2 with a message naming the file and where in
it -- never exit 3 (an internal error: a flowcheck bug) and never raise. ``flowcheck validate`` gets
the same documents.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowcheck.cli import main
from tests.conftest import POLICIES_DIR, REPO_ROOT

TOPOLOGY_FILE = REPO_ROOT / "fixtures" / "topology.yaml"
POLICY_DOCS = [yaml.safe_load(p.read_text()) for p in sorted(POLICIES_DIR.glob("*.yaml"))
               if p.name != "kustomization.yaml"]
EXTRA_DOCS = [yaml.safe_load("""
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rich, namespace: default}
specs:
  - endpointSelector: {matchExpressions: [{key: app, operator: In, values: [web]}]}
    egress:
      - toEndpoints: [{matchLabels: {k8s-app: kube-dns, io.kubernetes.pod.namespace: kube-system}}]
        toPorts: [{ports: [{port: "53", protocol: UDP}], rules: {dns: [{matchPattern: "*.example.com"}]}}]
      - toFQDNs: [{matchName: api.example.com}]
        toPorts: [{ports: [{port: "443", endPort: 444, protocol: TCP}]}]
      - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
      - icmps: [{fields: [{type: 8, family: IPv4}]}]
    ingressDeny: [{fromEntities: [world], toPorts: [{ports: [{port: "22"}]}]}]
    ingress:
      - fromEndpoints: [{}]
        toPorts: [{ports: [{port: http}], rules: {http: [{method: GET, path: "/v1/.*", headers: ["X-A: 1"],
                   headerMatches: [{name: X-B, value: b}]}]}}]
    enableDefaultDeny: {ingress: true, egress: false}
""")]
TOPOLOGY_DOC = yaml.safe_load(TOPOLOGY_FILE.read_text())

# What a real repository's mistakes and a hostile file look like: wrong types, empty and very long
# strings, NUL bytes and path separators (kind and apiVersion end up in schema file names), versions
# that do not exist, numbers beyond every range.
NASTY_TEXT = st.one_of(
    st.text(max_size=8),
    st.text(st.characters(codec="utf-8"), min_size=200, max_size=400),
    st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=4), st.text(max_size=4)),
    st.sampled_from(["a/b", "../../etc/passwd", "v1/", "/v1", "networking.k8s.io/v9", "cilium.io/v3", "v2",
                     "networking.k8s.io/v1beta1", "apps/v1", "x" * 300, "Network Policy", "\n", "-1"]))
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.integers(), st.floats(), NASTY_TEXT,
                 st.lists(st.integers(0, 3), max_size=2),
                 st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                 st.sampled_from(["", "*", "0", "http", "10.0.0.0/99", "ANY", "Ingress", "[", "In", {}, [], [{}]]))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    doc = copy.deepcopy(doc)
    path = draw(st.sampled_from(_paths(doc)))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    action = draw(st.sampled_from(["replace", "delete", "sibling"]))
    if action == "replace" or (action == "delete" and isinstance(parent, list)):
        parent[last] = draw(JUNK)
    elif action == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[draw(st.sampled_from(["bogus", "fromEndpoint", "lables", "prots"]))] = draw(JUNK)
    else:
        parent.append(draw(JUNK))
    return doc


def _run(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.data())
def test_malformed_policy_exits_2_naming_file_and_field(data: st.DataObject) -> None:
    """The same mutated documents through `plan` and `validate`: bad input, never a flowcheck bug."""
    docs = [*POLICY_DOCS, *EXTRA_DOCS]
    index = data.draw(st.integers(0, len(docs) - 1))
    docs[index] = data.draw(mutated(docs[index]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policies.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        for args in (["plan", "--topology", str(TOPOLOGY_FILE), "--policies", str(path), "--format", "json"],
                     ["validate", str(path)]):
            code, err = _run(args)
            assert code in (0, 2), err
            assert "Traceback" not in err and "internal error" not in err
            if code == 2:
                assert f"{path} (document {index}" in err, err


KIND_OR_VERSION = st.one_of(JUNK, st.sampled_from(["NetworkPolicy", "CiliumNetworkPolicy", "Deployment", "Namespace"]))


@FUZZ
@given(kind=KIND_OR_VERSION, api_version=KIND_OR_VERSION, which=st.integers(0, len(POLICY_DOCS) - 1))
def test_any_kind_and_api_version_is_checked_or_refused_by_validate_and_plan(kind: Any, api_version: Any,
                                                                            which: int) -> None:
    """kind and apiVersion name a schema file inside kubernetes-validate: no string may reach the file system."""
    doc = copy.deepcopy(POLICY_DOCS[which])
    doc["kind"], doc["apiVersion"] = kind, api_version
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(yaml.safe_dump(doc))
        for args in (["validate", str(path)],
                     ["plan", "--topology", str(TOPOLOGY_FILE), "--policies", str(path), "--format", "json"]):
            code, err = _run(args)
            assert code in (0, 2), err
            assert "Traceback" not in err and "internal error" not in err
            if code == 2 and args[0] == "plan":
                # the document's field, or -- a file holding no policy at all -- the path
                assert err.startswith((f"flowcheck: error: {path} (document 0), field ",
                                       f"flowcheck: error: {path}: no NetworkPolicy")), err
                assert err.count("\n") == 1, err
            elif code == 2:
                assert err.startswith(f"error: {path} (document 0), field "), err


@FUZZ
@given(st.data())
def test_malformed_topology_exits_2_naming_file_and_field(data: st.DataObject) -> None:
    doc = data.draw(mutated(TOPOLOGY_DOC))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "topology.yaml"
        path.write_text(yaml.safe_dump(doc))
        commands = [["plan", "--topology", str(path), "--policies", str(POLICIES_DIR), "--format", "json", "--by", by]
                    for by in ("workload", "identity")]
        for command in [*commands, ["validate", str(POLICIES_DIR), "--topology", str(path)]]:
            code, err = _run(command)
            assert code in (0, 2), err
            if code == 2:
                assert f"flowcheck: error: {path}" in err, err
                assert ", field " in err, err


@FUZZ
@given(st.data())
def test_malformed_flows_exit_2_naming_file_and_field(data: st.DataObject) -> None:
    flows = [{"from": "tenant/client", "to": "default/my-api", "protocol": "TCP", "port": 8080,
              "http": {"method": "POST", "path": "/", "headers": {"X-A": "1"}}},
             {"from": "default/web", "to": {"entity": "world", "ip": "1.1.1.1"}, "port": 443},
             {"from": "default/web", "to": {"fqdn": "a.example.com", "ip": "1.1.1.1"}, "port": 443},
             {"from": "default/web", "to": "default/my-api", "protocol": "ICMP", "icmp": {"type": 8}},
             {"from": "default/web", "to": "kube-system/coredns", "protocol": "UDP", "port": 53,
              "dns": {"query": "a.example.com"}}]
    doc = data.draw(mutated(flows))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.yaml"
        path.write_text(yaml.safe_dump(doc))
        code, err = _run(["explain", "--topology", str(TOPOLOGY_FILE), "--policies", str(POLICIES_DIR),
                          "--flows", str(path), "--format", "json"])
    assert code in (0, 2), err
    if code == 2:
        assert f"flowcheck: error: {path}, field " in err, err


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                         st.integers(1, 1200).map(lambda n: b"[" * n + b"]" * n),
                         st.integers(1, 3000).map(lambda n: b"a: " * n + b"1")),
       suffix=st.sampled_from([".yaml", ".json"]))
def test_any_file_content_is_read_or_refused_by_validate_and_plan(content: bytes, suffix: str) -> None:
    """Whatever a file holds -- binary, broken YAML or JSON, absurd nesting -- it is bad input, never a bug."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"file{suffix}"
        path.write_bytes(content)
        runs = [["validate", str(path)],
                ["plan", "--topology", str(TOPOLOGY_FILE), "--policies", str(path), "--format", "json"],
                ["plan", "--topology", str(path), "--policies", str(POLICIES_DIR), "--format", "json"],
                ["explain", "--topology", str(TOPOLOGY_FILE), "--policies", str(POLICIES_DIR), "--flows", str(path)]]
        for args in runs:
            code, err = _run(args)
            assert code in (0, 2), (args, err)
            assert "Traceback" not in err and "internal error" not in err, err
            if code == 2 and args[0] != "validate":
                error = [line for line in err.splitlines() if not line.startswith(("note: ", "warning: "))]
                assert len(error) == 1 and error[0].startswith(f"flowcheck: error: {path}"), err
