"""`flowcheck plan` and `flowcheck explain` (docs/contracts.md [The flowcheck command]): output forms, JSON shapes,
exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flowcheck.cli import main
from tests.conftest import POLICIES_DIR, REPO_ROOT

TOPOLOGY = str(REPO_ROOT / "fixtures" / "topology.yaml")
MODEL_ARGS = ["--topology", TOPOLOGY, "--policies", str(POLICIES_DIR)]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plan_json_version_1_has_exactly_its_old_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", *MODEL_ARGS, "--format", "json", "--json-version", "1")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["results"]
    assert all(list(r) == ["from", "to", "port", "protocol", "verdict", "reasons"] for r in data["results"])
    row = next(r for r in data["results"] if (r["from"], r["to"], r["port"], r["protocol"]) ==
               ("default/web", "kube-system/coredns", 53, "TCP"))
    assert row["verdict"] == "dropped"
    assert row["reasons"][0].startswith("NetworkPolicy default/allow-dns-egress egress: no rule allows TCP/53")
    # 6 workloads; every source to every served port of every destination (self-flows included).
    assert len(data["results"]) == 6 * (2 + 2 + 1 + 1 + 1 + 2)


def test_plan_json_is_a_document_of_decided_flows(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/contracts.md [Decided flows]: version 2 is the default."""
    code, out, _ = run(capsys, "plan", *MODEL_ARGS, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert {k: data[k] for k in ("kind", "format", "semantics")} == {"kind": "flowcheck-plan", "format": 2,
                                                                    "semantics": "cilium"}
    assert len(data["flows"]) == 6 * 9
    keys = ["from", "to", "protocol", "port", "verdict", "reasons", "decided_by", "policies", "rules", "l7"]
    assert all(list(f) == keys for f in data["flows"])
    get = next(f for f in data["flows"] if (f["from"], f["to"], f["port"]) == ("tenant/client", "default/my-api", 8080))
    assert get["verdict"] == "allowed"
    assert get["decided_by"] == "ingress"
    policy = {"kind": "CiliumNetworkPolicy", "namespace": "default", "name": "allow-get-only"}
    assert get["policies"] == [policy]
    assert get["rules"] == [{"policy": policy, "section": "ingress", "index": 0}]
    assert get["l7"] == {"passes": "GET", "filters": [{"direction": "ingress", "http": [{"method": "GET"}],
                                                       "dns": [], "rules": get["rules"]}]}
    own = next(f for f in data["flows"] if (f["from"], f["to"], f["port"]) == ("default/web", "default/web", 8080))
    assert (own["decided_by"], own["l7"]) == ("self", None)
    tcp53 = next(f for f in data["flows"] if (f["from"], f["to"], f["protocol"]) ==
                 ("default/web", "kube-system/coredns", "TCP"))
    assert (tcp53["verdict"], tcp53["decided_by"], tcp53["rules"]) == ("dropped", "egress", [])


def test_plan_filters_by_port_and_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", *MODEL_ARGS, "--port", "53", "--protocol", "udp", "--format", "json")
    assert code == 0
    results = json.loads(out)["flows"]
    assert {(r["to"], r["port"], r["protocol"]) for r in results} == {("kube-system/coredns", 53, "UDP")}
    assert {r["from"]: r["verdict"] for r in results}["default/web"] == "allowed"


def test_plan_takes_a_port_name_as_every_destination_port_of_that_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", *MODEL_ARGS, "--port", "metrics", "--format", "json")
    assert code == 0
    flows = json.loads(out)["flows"]
    assert {(f["to"], f["port"]) for f in flows} == {("default/my-api", 9090), ("default/web", 9090)}
    assert len(flows) == 12  # prometheus' own 9090 is named web: not a metrics port
    code, out, _ = run(capsys, "plan", *MODEL_ARGS, "--port", "dns-tcp", "--format", "json")
    assert {(f["to"], f["port"], f["protocol"]) for f in json.loads(out)["flows"]} == {
        ("kube-system/coredns", 53, "TCP")}
    code, _, err = run(capsys, "plan", *MODEL_ARGS, "--port", "metrics", "--protocol", "UDP")
    assert code == 2
    assert "--port metrics: no workload of the topology serves a UDP port named 'metrics'" in err


def test_plan_table_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", *MODEL_ARGS, "--port", "9090")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["FROM", "TO", "PORT", "VERDICT", "REASON"]
    assert any(line.split()[:4] == ["monitoring/grafana", "default/my-api", "9090/TCP", "dropped"] for line in lines)
    code, out, _ = run(capsys, "plan", *MODEL_ARGS, "--port", "9090", "--format", "markdown")
    assert code == 0
    assert out.startswith("| From | To | Port | Verdict | Reason |\n|---|---|---|---|---|\n")
    assert ("| monitoring/prometheus | default/web | 9090/TCP | allowed | "
            "NetworkPolicy default/allow-monitoring-scrape ingress rule 0") in out


def test_explain_json_is_a_list_in_input_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text("""\
- {from: tenant/client, to: default/my-api, protocol: TCP, port: 8080, http: {method: POST, path: /orders}}
- {from: default/web, to: kube-system/coredns, protocol: UDP, port: 53, dns: {query: api.example.com}}
- {from: default/web, to: {entity: world, ip: 1.1.1.1}, protocol: TCP, port: 443}
""")
    code, out, _ = run(capsys, "explain", *MODEL_ARGS, "--flows", str(flows), "--format", "json",
                       "--json-version", "1")
    assert code == 0
    data = json.loads(out)
    assert [list(item) for item in data] == [["flow", "verdict", "reasons"]] * 3
    assert data[0]["flow"] == {"from": "tenant/client", "to": "default/my-api", "protocol": "TCP", "port": 8080,
                               "http": {"method": "POST", "path": "/orders"}}
    assert [item["verdict"] for item in data] == ["l7-denied", "allowed", "dropped"]
    assert data[0]["reasons"][0].startswith("CiliumNetworkPolicy default/allow-get-only ingress rule 0: http POST")
    assert data[2]["flow"]["to"] == {"entity": "world", "ip": "1.1.1.1"}
    code, out, _ = run(capsys, "explain", *MODEL_ARGS, "--flows", str(flows), "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert (document["kind"], document["format"]) == ("flowcheck-explain", 2)
    assert [{k: f[k] for k in ("from", "to", "protocol", "port", "http", "dns", "verdict", "reasons") if k in f}
            for f in document["flows"]] == [{**item["flow"], "verdict": item["verdict"], "reasons": item["reasons"]}
                                            for item in data]
    assert document["flows"][0]["l7"]["passes"] == "GET"
    assert document["flows"][0]["decided_by"] == "ingress"


def test_a_decided_flow_is_a_flows_file_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What plan writes, explain --flows reads back, and decides the same way."""
    code, out, _ = run(capsys, "plan", *MODEL_ARGS, "--format", "json")
    planned = json.loads(out)["flows"]
    flows = tmp_path / "flows.json"
    flows.write_text(json.dumps([{k: f[k] for k in ("from", "to", "protocol", "port")} for f in planned]))
    code, out, _ = run(capsys, "explain", *MODEL_ARGS, "--flows", str(flows), "--format", "json")
    assert code == 0
    assert json.loads(out)["flows"] == planned


def test_explain_asks_dns_over_udp_53_unless_told_otherwise(capsys: pytest.CaptureFixture[str]) -> None:
    """As flowcheck_paths.expect(dns=...) does: the two entry points answer the same question the same way."""
    args = ["explain", *MODEL_ARGS, "--from", "default/web", "--to", "kube-system/coredns", "--dns-query",
            "kubernetes.default.svc.cluster.local"]
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert out.splitlines()[0].startswith("default/web -> kube-system/coredns UDP/53 dns kubernetes.default")
    assert out.splitlines()[0].endswith(": allowed")
    code, out, _ = run(capsys, *args, "--protocol", "TCP")
    assert out.splitlines()[0] == ("default/web -> kube-system/coredns TCP/53 dns kubernetes.default.svc.cluster.local:"
                                   " dropped")


def test_explain_takes_a_port_name_of_the_destination(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", *MODEL_ARGS, "--from", "monitoring/prometheus", "--to", "default/web",
                       "--port", "metrics")
    assert code == 0
    assert out.splitlines()[0] == "monitoring/prometheus -> default/web TCP/9090: allowed"
    code, out, _ = run(capsys, "explain", *MODEL_ARGS, "--from", "default/web", "--to", "kube-system/coredns",
                       "--port", "dns")
    assert code == 0
    assert out.splitlines()[0] == "default/web -> kube-system/coredns UDP/53: allowed"  # the name brings UDP
    code, _, err = run(capsys, "explain", *MODEL_ARGS, "--from", "default/web", "--to", "kube-system/coredns",
                       "--port", "dns", "--protocol", "TCP")
    assert code == 2
    assert "field --port: kube-system/coredns serves no TCP port named 'dns' (it serves UDP/53 (dns), TCP/53" in err
    code, _, err = run(capsys, "explain", *MODEL_ARGS, "--from", "default/web", "--to", "world", "--port", "https")
    assert code == 2
    assert "field --port: world is outside the topology and serves no named ports; give the number" in err


def test_explain_single_flow_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", *MODEL_ARGS, "--from", "tenant/client", "--to", "default/my-api",
                       "--port", "8080", "--protocol", "TCP", "--http-method", "GET", "--http-path", "/x",
                       "--http-header", "X-Token: 42")
    assert code == 0
    assert out.splitlines()[0] == "tenant/client -> default/my-api TCP/8080 http GET /x: allowed"
    assert "  - CiliumNetworkPolicy default/allow-get-only ingress rule 0: http GET matched" in out


def test_explain_says_when_semantics_matter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/contracts.md [The flowcheck command]: explain says when cilium and kubernetes semantics differ for the
    flow."""
    topology = tmp_path / "t.yaml"
    topology.write_text("namespaces: {default: {}}\nworkloads:\n"
                        "  - {name: a, namespace: default, labels: {app: a}, ip: 10.244.0.5, ports: [{port: 80}]}\n"
                        "  - {name: b, namespace: default, labels: {app: b}, ports: [{port: 80}]}\n")
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                      "metadata: {name: ip, namespace: default}\n"
                      "spec: {podSelector: {matchLabels: {app: b}},\n"
                      "       ingress: [{from: [{ipBlock: {cidr: 10.244.0.0/16}}]}]}\n")
    args = ["explain", "--topology", str(topology), "--policies", str(policy), "--from", "default/a", "--to",
            "default/b", "--port", "80"]
    code, out, _ = run(capsys, *args, "--format", "json")
    assert code == 0
    [item] = json.loads(out)["flows"]
    assert item["verdict"] == "dropped"
    assert item["semantics_note"].startswith("--semantics matters here: with --semantics kubernetes the verdict is "
                                             "allowed")
    code, out, _ = run(capsys, *args, "--semantics", "kubernetes")
    assert code == 0
    assert ": allowed" in out.splitlines()[0]
    assert "note: --semantics matters here: with --semantics cilium the verdict is dropped" in out


@pytest.mark.parametrize(("extra", "message"), [
    (["--from", "default/ghost", "--to", "default/web", "--port", "80"], "command line, field --from: no workload"),
    (["--from", "default/web", "--to", "entity:galaxy", "--port", "80"], "command line, field --to: expected one of"),
    (["--from", "default/web", "--to", "default/my-api"], "command line, field --port: missing required field"),
    (["--to", "default/my-api", "--port", "80"], "explain needs --flows FILE"),
])
def test_explain_bad_input_exits_2_naming_the_option(capsys: pytest.CaptureFixture[str], extra: list[str],
                                                     message: str) -> None:
    code, _, err = run(capsys, "explain", *MODEL_ARGS, *extra)
    assert code == 2
    assert message in err


def test_plan_bad_topology_exits_2_naming_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    topology = tmp_path / "t.yaml"
    topology.write_text("namespaces: {default: {}}\nworkloads: [{name: a, namespace: default, ports: [{port: x}]}]\n")
    code, _, err = run(capsys, "plan", "--topology", str(topology), "--policies", str(POLICIES_DIR))
    assert code == 2
    assert f"{topology}, field workloads[0].ports[0].port: expected a number" in err


def test_plan_bad_policy_exits_2_naming_file_document_and_field(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: d}\n"
                      "spec: {endpointSelector: {}, ingress: [{fromEndpoints: [{}], fromCIDR: [1.0.0.0/8]}]}\n")
    code, _, err = run(capsys, "plan", "--topology", TOPOLOGY, "--policies", str(policy))
    assert code == 2
    assert f"{policy} (document 0), field spec.ingress[0]: combining fromEndpoints and fromCIDR" in err
