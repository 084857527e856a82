"""``flowcheck diff`` against a real git repository: this repository's policies at a base commit, and a working
tree that widens the scrape rule and removes the GET-only rule (issue 12's acceptance test)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from flowcheck.cli import main
from flowcheck.model.engine import Model
from flowcheck.model.flows import Flow, HttpRequest
from flowcheck.model.policies import load_policies
from flowcheck.model.topology import load_topology
from flowcheck.report.files import write_report_dir
from flowcheck.report.records import MatrixReport, decided_record
from flowcheck.verdict import Verdict
from tests.conftest import POLICIES_DIR, REPO_ROOT
from tests.report.htmltree import parse_html

OPENED = {("monitoring/grafana", "default/my-api", 9090), ("monitoring/grafana", "default/web", 9090)}
CLOSED = {(source, "default/my-api", 8080)
          for source in ("kube-system/coredns", "monitoring/grafana", "monitoring/prometheus", "tenant/client")}
MODEL = ["--topology", "fixtures/topology.yaml", "--policies", "manifests/network-policies"]


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return result.stdout


def widen_scrape_and_drop_get_only(policies: Path) -> None:
    scrape = policies / "allow-monitoring-scrape.yaml"
    text = scrape.read_text()
    selector = "          podSelector:\n            matchLabels:\n              app.kubernetes.io/name: prometheus\n"
    assert selector in text
    scrape.write_text(text.replace(selector, ""))  # any pod of monitoring may scrape now
    (policies / "allow-get-only.yaml").unlink()
    kustomization = policies / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("  - allow-get-only.yaml\n", ""))


def add_policy(policies: Path, name: str, text: str) -> None:
    (policies / name).write_text(text)
    kustomization = policies / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + f"  - {name}\n")


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)


def make_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding this repository's topology and policies, committed, the working tree clean
    and the current directory."""
    root = tmp_path / "repo"
    (root / "fixtures").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "fixtures" / "topology.yaml", root / "fixtures" / "topology.yaml")
    shutil.copytree(POLICIES_DIR, root / "manifests" / "network-policies")
    git(root, "init", "-q")
    commit(root, "base")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def base_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``make_repo``: this repository committed, nothing changed yet."""
    return make_repo(tmp_path, monkeypatch)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``make_repo`` with the change in its working tree (not committed: what a reviewer has checked out).
    Needs no other fixture of this module: tests/cli/test_replay.py imports it alone."""
    root = make_repo(tmp_path, monkeypatch)
    widen_scrape_and_drop_get_only(root / "manifests" / "network-policies")
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def paths_in_text(section: str, text: str) -> set[tuple[str, str, int]]:
    block = text.split(f"\n{section} (", 1)[1].split("\n\n", 1)[0]
    found = set()
    for line in block.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("    "):
            source, rest = line.strip().split(" -> ", 1)
            destination, port = rest.split(":", 1)[0], int(rest.split(":")[1].split("/")[0])
            found.add((source, destination, port))
    return found


def test_the_change_is_reported_exactly_in_text(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = git(repo, "status", "--porcelain")
    head = git(repo, "rev-parse", "HEAD")
    code, out, err = run(capsys, "diff", *MODEL, "--base", "HEAD")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"flowcheck diff: HEAD ({head[:12]}) -> working tree"
    assert lines[2] == "45 paths compared (self-flows left out): 6 changed -- 2 opened, 4 closed"
    assert paths_in_text("OPENED", out) == OPENED
    assert paths_in_text("CLOSED", out) == CLOSED
    assert ("  tenant/client -> default/my-api:8080/TCP: L7: GET -> dropped") in lines
    closed = lines.index("  tenant/client -> default/my-api:8080/TCP: L7: GET -> dropped")
    assert lines[closed + 1].startswith("    before: CiliumNetworkPolicy default/allow-get-only ingress rule 0: "
                                        "http GET")
    assert lines[closed + 3].startswith("    after:  NetworkPolicy default/default-deny-ingress, NetworkPolicy "
                                        "default/allow-monitoring-scrape ingress: no rule allows TCP/8080")
    # Read from git's objects: the working tree, the index and HEAD are as they were.
    assert git(repo, "status", "--porcelain") == status
    assert git(repo, "rev-parse", "HEAD") == head


def test_the_change_is_reported_exactly_in_markdown(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--format", "markdown")
    assert code == 0
    assert out.startswith("## flowcheck diff: `HEAD (")
    sections = dict(part.split("\n", 1) for part in out.split("\n### ")[1:])
    assert set(sections) == {"Opened (2)", "Closed (4)"}
    listed = {kind: {line for line in body.splitlines() if line.startswith("- ")} for kind, body in sections.items()}
    assert listed["Opened (2)"] == {f"- `{s}` → `{d}:{p}/TCP`: 🔴 dropped → 🟢 **allowed**" for s, d, p in OPENED}
    assert listed["Closed (4)"] == {f"- `{s}` → `{d}:{p}/TCP`: 🔵 L7: GET → 🔴 **dropped**" for s, d, p in CLOSED}
    assert "  - before: CiliumNetworkPolicy default/allow-get-only ingress rule 0: http GET" in out


def test_the_change_is_reported_exactly_in_json_as_decided_flows(repo: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert (document["kind"], document["format"], document["head"]) == ("flowcheck-diff", 2, "working tree")
    assert document["compared"] == 45
    assert document["counts"] == {"opened": 2, "closed": 4, "now-l7-filtered": 0, "no-longer-l7-filtered": 0,
                                  "l7-changed": 0, "verdict-changed": 0}
    by_kind: dict[str, set[tuple[str, str, int]]] = {}
    for change in document["changes"]:
        before, after = change["before"], change["after"]
        assert {k: before[k] for k in ("from", "to", "protocol", "port")} == \
               {k: after[k] for k in ("from", "to", "protocol", "port")}
        by_kind.setdefault(change["change"], set()).add((after["from"], after["to"], after["port"]))
        if change["change"] == "closed":
            assert before["l7"]["passes"] == "GET"
            assert before["policies"] == [{"kind": "CiliumNetworkPolicy", "namespace": "default",
                                           "name": "allow-get-only"}]
            assert (after["verdict"], after["decided_by"], after["l7"]) == ("dropped", "ingress", None)
        else:
            assert after["rules"] == [{"policy": {"kind": "NetworkPolicy", "namespace": "default",
                                                  "name": "allow-monitoring-scrape"},
                                       "section": "ingress", "index": 0}]
    assert by_kind == {"opened": OPENED, "closed": CLOSED}


def test_the_html_page_draws_the_change_on_the_service_map(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--format", "html")
    assert code == 0
    tree = parse_html(out)
    assert tree.root.find_id("changes").text() == "Changes"
    data = json.loads(tree.root.find_id("fm-data").text())
    changed = {(e["source"], e["target"], int(e["pp"].split("/")[0]), e["change"]["status"])
               for e in data["edges"] if "change" in e}
    assert changed == {(*p, "opened") for p in OPENED} | {(*p, "closed") for p in CLOSED}
    assert [(c["key"], c["count"]) for c in data["changes"] if c["count"]] == [("opened", 2), ("closed", 4)]


def test_fail_on_change_exits_1_only_when_something_changed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "diff", *MODEL, "--base", "HEAD", "--fail-on-change")[0] == 1
    same = run(capsys, "diff", *MODEL, "--base-policies", "manifests/network-policies", "--fail-on-change")
    assert same[0] == 0
    assert "45 paths compared (self-flows left out): no path changed" in same[1]


def test_the_step_summary_gets_the_markdown(repo: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--step-summary")
    assert code == 0 and out.startswith("flowcheck diff: HEAD")
    text = summary.read_text()
    assert text.startswith("earlier step\n## flowcheck diff: `HEAD (")
    assert "### Closed (4)" in text


def test_declared_intent_the_change_flips_comes_first(repo: Path, capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    """The intent of a suites run (its matrix.json): a GET the change now drops is listed before the rest."""
    model = Model(load_topology(repo / "fixtures" / "topology.yaml"), load_policies([POLICIES_DIR]), "cilium")
    get = Flow.between("tenant/client", "default/my-api", port=8080, http=HttpRequest.make("GET", "/orders"))
    scrape = Flow.between("monitoring/prometheus", "default/web", port=9090)
    records = [decided_record(get, model.decide(get), request="GET /orders", expected=Verdict.ALLOWED,
                              test="suites/test_l7_http.py::test_get"),
               decided_record(scrape, model.decide(scrape), expected=Verdict.ALLOWED, test="suites/test_scrape.py")]
    report = write_report_dir(MatrixReport(tuple(records)), tmp_path / "suites-report")
    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--intent", str(report.directory))
    assert code == 0
    lines = out.splitlines()
    assert lines[3] == "declared intent: 2 paths decided, 1 flipped by the change (1 now breaks it)"
    assert lines[5] == "DECLARED INTENT FLIPPED (1)"
    assert lines[6] == ("  tenant/client -> default/my-api:8080/TCP GET /orders: allowed -> dropped (expected allowed: "
                        "now breaks the intent; suites/test_l7_http.py::test_get)")
    assert lines.index("OPENED (2)") > 6
    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--intent", str(report.matrix), "--format", "json")
    intent = json.loads(out)["intent"]
    assert intent["checked"] == 2
    [flipped] = intent["flipped"]
    assert (flipped["change"], flipped["expected"], flipped["breaks_intent"]) == ("closed", "allowed", True)
    assert flipped["after"]["http"] == {"method": "GET", "path": "/orders"}


def test_an_intent_file_is_declared_intent_as_a_suites_report_is(repo: Path, capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    """``--intent shop.flowcheck.yaml``: the paths an intent file declares, without a suites run first."""
    intent = tmp_path / "api.flowcheck.yaml"
    intent.write_text("- name: the client reads orders\n"
                      "  from: tenant/client\n  to: default/my-api\n  port: 8080\n  http: GET /orders\n"
                      "  verdict: allowed\n"
                      "- name: prometheus scrapes web\n"
                      "  from: monitoring/prometheus\n  to: default/web\n  port: 9090\n  verdict: allowed\n")
    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--intent", str(intent))
    assert code == 0
    lines = out.splitlines()
    assert lines[3] == "declared intent: 2 paths decided, 1 flipped by the change (1 now breaks it)"
    assert lines[6] == ("  tenant/client -> default/my-api:8080/TCP GET /orders: allowed -> dropped (expected allowed: "
                        f"now breaks the intent; {intent}::the client reads orders)")
    intent.write_text("- {from: tenant/client, to: default/my-api, port: 8080, verdict: denied}\n")
    code, _, err = run(capsys, "diff", *MODEL, "--base", "HEAD", "--intent", str(intent))
    assert code == 2
    assert f"{intent}:1: entry 0" in err and "field verdict: unknown verdict 'denied'" in err


def test_an_unknown_ref_is_bad_input(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "diff", *MODEL, "--base", "no-such-branch")
    assert code == 2
    assert "--base no-such-branch: not a commit in the git repository" in err


def test_policies_added_by_the_change_have_no_base(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = repo / "extra-policies"
    extra.mkdir()
    (extra / "deny-tenant.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: tenant}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress]}\n")
    code, out, err = run(capsys, "diff", *MODEL, "extra-policies", "--base", "HEAD")
    assert code == 0
    assert "note: extra-policies does not exist at HEAD: the base has no policies there" in err
    assert "tenant/client:8080/TCP: allowed -> dropped" in out


def test_an_error_in_a_base_policy_names_the_ref_not_a_temporary_directory(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = repo / "manifests" / "network-policies" / "default-deny-ingress.yaml"
    broken.write_text(broken.read_text().replace("podSelector: {}", "podSelector: []"))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "broken")
    broken.write_text(broken.read_text().replace("podSelector: []", "podSelector: {}"))
    code, _, err = run(capsys, "diff", *MODEL, "--base", "HEAD")
    assert code == 2
    assert "HEAD:manifests/network-policies/default-deny-ingress.yaml" in err
    assert "flowcheck-base-" not in err


def test_outside_a_git_repository_base_is_refused_with_the_alternative(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(POLICIES_DIR, plain / "policies")
    monkeypatch.chdir(plain)
    code, _, err = run(capsys, "diff", "--topology", str(REPO_ROOT / "fixtures" / "topology.yaml"), "--policies",
                       "policies", "--base", "HEAD")
    assert code == 2
    assert "not inside a git repository" in err and "--base-policies" in err


# A pull request that lets web reach the outside world: its DNS lookups through the proxy (so toFQDNs can learn
# api.stripe.com), HTTPS to world, HTTPS to api.stripe.com, and every port of every IPv4 address.
WEB_TO_WORLD = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-to-world, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
      toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]
    - toEntities: [world]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
    - toFQDNs: [{matchName: api.stripe.com}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
    - toCIDR: [0.0.0.0/0]
"""
OUTSIDE_OPENED = {("default/web", "world", 443), ("default/web", "api.stripe.com", 443),
                  ("default/web", "0.0.0.0/0", 443)}
# The DNS rule opens TCP/53 behind the DNS proxy (the base allows UDP/53 only, and so UDP/53 without it).
DNS_OPENED = {("default/web", "kube-system/coredns", 53)}


def test_a_change_that_opens_the_outside_world_reports_each_opened_path_and_fails_on_change(
        base_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_policy(base_repo / "manifests" / "network-policies", "web-to-world.yaml", WEB_TO_WORLD)
    code, out, err = run(capsys, "diff", *MODEL, "--base", "HEAD", "--fail-on-change")
    assert code == 1, err
    lines = out.splitlines()
    assert lines[2] == ("48 paths compared, 3 of them to or from outside the cluster (self-flows left out): "
                        "4 changed -- 4 opened")
    assert paths_in_text("OPENED", out) == OUTSIDE_OPENED | DNS_OPENED
    assert "  default/web -> api.stripe.com:443/TCP: dropped -> allowed" in lines
    assert "  default/web -> kube-system/coredns:53/TCP: dropped -> L7: dns *" in lines
    assert ("note: CiliumNetworkPolicy default/web-to-world egress rule 3: names no port; default/web -> 0.0.0.0/0 "
            "is compared on TCP/443 as an example (the rule treats every port alike)") in err.splitlines()

    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--format", "json")
    document = json.loads(out)
    assert (document["compared"], document["compared_outside"]) == (48, 3)
    opened = {(c["after"]["from"], json.dumps(c["after"]["to"], sort_keys=True), c["after"]["port"])
              for c in document["changes"] if c["change"] == "opened"}
    assert opened == {("default/web", json.dumps(end, sort_keys=True), port) for end, port in (
        ({"entity": "world"}, 443), ({"fqdn": "api.stripe.com"}, 443), ({"cidr": "0.0.0.0/0"}, 443),
        ("kube-system/coredns", 53))}

    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--format", "markdown")
    assert out.splitlines()[2] == ("**48 paths compared, 3 of them to or from outside the cluster (self-flows left "
                                   "out): 4 changed -- 4 opened**")
    for destination in ("world", "api.stripe.com", "0.0.0.0/0"):
        assert f"- `default/web` → `{destination}:443/TCP`: 🔴 dropped → 🟢 **allowed**" in out

    code, out, _ = run(capsys, "diff", *MODEL, "--base", "HEAD", "--format", "html")
    data = json.loads(parse_html(out).root.find_id("fm-data").text())
    outside = {n["id"]: n["kind"] for n in data["nodes"] if n["kind"] != "workload"}
    assert outside == {"world": "entity", "api.stripe.com": "fqdn", "0.0.0.0/0": "cidr"}
    changed = {(e["source"], e["target"], int(e["pp"].split("/")[0]), e["change"]["status"])
               for e in data["edges"] if "change" in e}
    assert {(s, t, p, "opened") for s, t, p in OUTSIDE_OPENED} <= changed


FQDN_ONLY = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-to-stripe, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]
      toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]
    - toFQDNs: [{matchName: api.stripe.com}]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
"""


def test_a_change_that_removes_an_fqdn_rule_reports_the_path_closed(
        base_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The path is named by the base's rule only: a diff of the working tree's rules alone would miss it."""
    policies = base_repo / "manifests" / "network-policies"
    add_policy(policies, "web-to-stripe.yaml", FQDN_ONLY)
    commit(base_repo, "web reaches stripe")
    stripe = policies / "web-to-stripe.yaml"
    stripe.write_text(FQDN_ONLY.split("    - toFQDNs")[0])
    code, out, err = run(capsys, "diff", *MODEL, "--base", "HEAD", "--fail-on-change")
    assert code == 1, err
    assert out.splitlines()[2] == ("46 paths compared, 1 of them to or from outside the cluster (self-flows left "
                                   "out): 1 changed -- 1 closed")
    assert paths_in_text("CLOSED", out) == {("default/web", "api.stripe.com", 443)}
