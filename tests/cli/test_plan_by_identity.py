"""``flowcheck plan --by identity``: a row per identity pair and port, with its workloads, in JSON, table, Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flowcheck.cli import main
from tests.conftest import POLICIES_DIR
from tests.model.test_identity_classes import INGRESS_BY_NAME

# Two workloads per identity (web-1/web-2, client-1/client-2); web-3 shares web's identity but calls
# its port 8080 `www`, so the rule opening `http` does not open it: web's identity splits.
TOPOLOGY = {"namespaces": {"a": {}}, "workloads": [
    {"name": "web-1", "namespace": "a", "labels": {"app": "web"}, "ports": [{"name": "http", "port": 8080}]},
    {"name": "web-2", "namespace": "a", "labels": {"app": "web"}, "ports": [{"name": "http", "port": 8080}]},
    {"name": "web-3", "namespace": "a", "labels": {"app": "web"}, "ports": [{"name": "www", "port": 8080}]},
    {"name": "client-1", "namespace": "a", "labels": {"app": "client"}},
    {"name": "client-2", "namespace": "a", "labels": {"app": "client"}},
]}


@pytest.fixture
def model_args(tmp_path: Path) -> list[str]:
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(TOPOLOGY))
    (tmp_path / "policy.yaml").write_text(INGRESS_BY_NAME)
    return ["--topology", str(tmp_path / "topology.yaml"), "--policies", str(tmp_path / "policy.yaml")]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["plan", *args]) == 0
    return capsys.readouterr().out


def test_json_lists_the_identities_and_one_row_per_identity_pair(capsys: pytest.CaptureFixture[str],
                                                                 model_args: list[str]) -> None:
    data = json.loads(_run(capsys, *model_args, "--by", "identity", "--format", "json"))
    assert list(data) == ["kind", "format", "semantics", "topology", "policies", "by", "warnings", "identities",
                          "results"]
    assert data["identities"] == [
        {"identity": "a/{app=web}", "namespace": "a", "labels": {"app": "web"},
         "serviceAccount": "default", "workloads": ["a/web-1", "a/web-2", "a/web-3"]},
        {"identity": "a/{app=client}", "namespace": "a", "labels": {"app": "client"},
         "serviceAccount": "default", "workloads": ["a/client-1", "a/client-2"]}]
    rows = [(r["from"], r["to"], r["from_workloads"], r["to_workloads"], r["self"], r["flows"], r["verdict"])
            for r in data["results"]]
    web, client = "a/{app=web}", "a/{app=client}"
    webs = ["a/web-1", "a/web-2", "a/web-3"]
    clients = ["a/client-1", "a/client-2"]
    assert rows == [
        (web, web, webs, webs, False, 6, "dropped"),
        (web, web, webs, webs, True, 3, "allowed"),
        (client, web, clients, ["a/web-1", "a/web-2"], False, 4, "allowed"),
        (client, web, clients, ["a/web-3"], False, 2, "dropped"),
    ]
    assert data["results"][2]["reasons"][0] == (
        "CiliumNetworkPolicy a/web-in ingress rule 0: allows TCP/8080 from a/{app=client}")
    assert list(data["results"][0]) == ["from", "to", "port", "protocol", "verdict", "reasons", "from_workloads",
                                        "to_workloads", "self", "flows"]


def test_the_rows_stand_for_exactly_the_workload_plan(capsys: pytest.CaptureFixture[str],
                                                     model_args: list[str]) -> None:
    by_identity = json.loads(_run(capsys, *model_args, "--by", "identity", "--format", "json"))["results"]
    per_workload = json.loads(_run(capsys, *model_args, "--format", "json"))["flows"]
    expanded = []
    for row in by_identity:
        pairs = ([(w, w) for w in row["from_workloads"]] if row["self"] else
                 [(s, d) for s in row["from_workloads"] for d in row["to_workloads"] if s != d])
        assert len(pairs) == row["flows"]
        expanded.extend((s, d, row["port"], row["protocol"], row["verdict"]) for s, d in pairs)
    assert sorted(expanded) == sorted((r["from"], r["to"], r["port"], r["protocol"], r["verdict"])
                                      for r in per_workload)


def test_table_and_markdown_name_the_workloads_of_a_split_identity(capsys: pytest.CaptureFixture[str],
                                                                  model_args: list[str]) -> None:
    table = _run(capsys, *model_args, "--by", "identity").splitlines()
    assert table[0].split() == ["IDENTITY", "WORKLOADS"]
    assert table[1].split() == ["a/{app=web}", "a/web-1,", "a/web-2,", "a/web-3"]
    assert table[4].split() == ["FROM", "TO", "PORT", "VERDICT", "FLOWS", "REASON"]
    assert table[6].split()[:7] == ["a/{app=web}", "(each", "to", "itself)", "8080/TCP", "allowed", "3"]
    assert table[8].split()[:5] == ["a/{app=client}", "a/{app=web}", "[a/web-3]", "8080/TCP",
                                    "dropped"]
    markdown = _run(capsys, *model_args, "--by", "identity", "--format", "markdown")
    assert "| a/\\{app=client\\} | a/\\{app=web\\} \\[a/web-3\\] | 8080/TCP | **dropped** | 2 |" \
        in markdown


@pytest.mark.parametrize("form", ["matrix", "html"])
def test_formats_that_draw_workloads_are_refused_by_identity(capsys: pytest.CaptureFixture[str], form: str) -> None:
    code = main(["plan", "--topology", "t.yaml", "--policies", str(POLICIES_DIR), "--by", "identity", "--format", form])
    assert code == 2
    assert capsys.readouterr().err == (f"flowcheck: error: --by identity: --format {form} draws workloads; use "
                                       "--format table, json, markdown\n")


def test_json_starts_with_its_own_kind_and_format(capsys: pytest.CaptureFixture[str], model_args: list[str]) -> None:
    """A reader tells a by-identity document from a per-workload plan (``flowcheck-plan``, format 2) by its head."""
    text = _run(capsys, *model_args, "--by", "identity", "--format", "json", "--semantics", "kubernetes")
    assert text.startswith('{"kind":"flowcheck-plan-by-identity","format":1,"semantics":"kubernetes",')
    data = json.loads(text)
    assert (data["topology"], data["policies"]) == (model_args[1], [model_args[3]])
    assert data["by"] == "identity"


def test_json_version_is_refused_by_identity(capsys: pytest.CaptureFixture[str], model_args: list[str]) -> None:
    """``--json-version`` picks a version of the per-workload plan; the by-identity document has its own format."""
    for version in ("1", "2"):
        code = main(["plan", *model_args, "--by", "identity", "--format", "json", "--json-version", version])
        assert code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "--json-version" in err and "--by identity" in err


@pytest.mark.parametrize("extra", [[], ["--by", "identity"], ["--by", "identity", "--format", "markdown"],
                                   ["--format", "matrix"]])
def test_indent_is_refused_unless_the_format_is_json(capsys: pytest.CaptureFixture[str], model_args: list[str],
                                                     extra: list[str]) -> None:
    assert main(["plan", *model_args, *extra, "--indent", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--indent" in err and "--format json" in err


def test_indent_lays_out_the_by_identity_document(capsys: pytest.CaptureFixture[str], model_args: list[str]) -> None:
    compact = _run(capsys, *model_args, "--by", "identity", "--format", "json")
    indented = _run(capsys, *model_args, "--by", "identity", "--format", "json", "--indent", "2")
    assert indented == json.dumps(json.loads(compact), indent=2) + "\n"
