"""``flowcheck replay``: realistic Hubble flows (tests/data/replay, written from the documented JSONPB shape)
decided against this repository's policies, and against a change that widens the scrape rule and removes the
GET-only rule (issue 12's acceptance test: the observed paths the variant would drop)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from flowcheck.cli import main
from tests.cli.test_diff import MODEL, repo  # noqa: F401  (the git repository with the change, a fixture)
from tests.conftest import POLICIES_DIR, REPO_ROOT

FLOWS = REPO_ROOT / "tests" / "data" / "replay" / "hubble-flows.jsonl"
ARGS = ["--topology", str(REPO_ROOT / "fixtures" / "topology.yaml"), "--policies", str(POLICIES_DIR)]
NEWLY_DROPPED = [
    "tenant/client -> default/my-api:8080/TCP: L7: GET -> dropped; seen once: REDIRECTED",
    "tenant/client -> default/my-api:8080/TCP GET /orders: allowed -> dropped; seen once: FORWARDED",
    "monitoring/prometheus -> default/my-api:8080/TCP: L7: GET -> dropped; seen once: REDIRECTED",
    "monitoring/prometheus -> default/my-api:8080/TCP GET /healthz: allowed -> dropped; seen once: FORWARDED",
]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_observed_path_is_decided_and_every_other_record_is_accounted_for(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "replay", str(FLOWS), *ARGS)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (f"flowcheck replay: {FLOWS}: 26 flow records; 14 distinct paths; 7 records not replayed "
                        "(below); 1 line was not a flow (lost events, node status, not JSON)")
    assert "0 observed paths the cluster carried would be dropped (or denied by the proxy) by these policies." in lines
    paths = lines[lines.index("observed paths (14):") + 1:lines.index("not replayed (7 records):") - 1]
    assert len(paths) == 14
    assert "   monitoring/prometheus -> default/my-api:9090/TCP: seen 3 times: FORWARDED; model allowed" in paths
    assert "   tenant/client -> default/my-api:8080/TCP POST /orders: seen once: DROPPED; model l7-denied" in paths
    assert "   tenant/client -> kube-system/coredns:53/UDP DNS api.example.com: seen once: FORWARDED; model allowed" \
        in paths
    assert "   tenant/client -> api.example.com (203.0.113.7):443/TCP: seen once: FORWARDED; model allowed" in paths
    assert "   host (10.244.2.243) -> default/my-api:8080/TCP: seen once: FORWARDED; model allowed" in paths
    skipped = lines[lines.index("not replayed (7 records):") + 1:]
    assert [line for line in skipped if not line.startswith("      e.g.")] == [
        "  2 replies (is_reply): the model decides connection initiations; a reply passes with its connection",
        "  3 L7 responses: the request they answer is replayed",
        "  2 the source is not a workload of the topology, nor an entity flowcheck can name"]
    assert ("      e.g. default/legacy-batch-28791-xk2p9 (app=legacy-batch): no workload of default has all its "
            "labels among these") in skipped
    assert "      e.g. cilium-test-1/client-645b68dcf7-s5mdb: the topology has no namespace cilium-test-1" in skipped


def test_with_the_change_the_headline_is_the_observed_paths_it_newly_drops(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    code, out, _ = run(capsys, "replay", str(FLOWS), *MODEL, "--base", "HEAD")
    assert code == 0
    lines = out.splitlines()
    start = lines.index("4 observed paths would be newly dropped by this change (allowed before it, dropped or "
                        "denied by the proxy after):")
    assert [line.strip() for line in lines[start + 1:] if line.startswith("  ") and not line.startswith("    ")
            ][:4] == NEWLY_DROPPED
    flagged = [line for line in lines if line.startswith(" ! ")]
    assert len(flagged) == 4
    # The POST the proxy already denied is not "newly" dropped; grafana's scrape is opened, not dropped.
    assert " ! tenant/client -> default/my-api:8080/TCP POST /orders" not in "\n".join(flagged)
    assert "   monitoring/grafana -> default/my-api:9090/TCP: seen 2 times: DROPPED; model dropped -> allowed" in lines
    assert run(capsys, "replay", str(FLOWS), *MODEL, "--base", "HEAD", "--fail-on-drop")[0] == 1


def test_the_newly_dropped_paths_in_markdown_and_json(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    code, out, _ = run(capsys, "replay", str(FLOWS), *MODEL, "--base", "HEAD", "--format", "markdown")
    assert code == 0
    assert "**4 observed paths would be newly dropped by this change" in out
    listed = [line for line in out.splitlines() if line.startswith("- `")]
    assert listed == [f"- `{line.split(': ', 1)[0]}`: {line.split(': ', 1)[1].replace(' -> ', ' → ')}"
                      for line in NEWLY_DROPPED]
    code, out, _ = run(capsys, "replay", str(FLOWS), *MODEL, "--base", "HEAD", "--format", "json")
    document = json.loads(out)
    assert (document["kind"], document["format"], document["records"], document["not_flows"]) == (
        "flowcheck-replay", 2, 26, 1)
    assert document["headline"]["paths"] == 4
    dropped = [p for p in document["paths"] if p["would_drop"]]
    assert [(p["after"]["from"], p["after"]["port"], p["after"].get("http"), p["before"]["verdict"],
             p["after"]["verdict"]) for p in dropped] == [
        ("tenant/client", 8080, None, "allowed", "dropped"),
        ("tenant/client", 8080, {"method": "GET", "path": "/orders", "headers": {"Accept": "*/*"},
                                 "host": "10.244.2.31:8080"}, "allowed", "dropped"),
        ("monitoring/prometheus", 8080, None, "allowed", "dropped"),
        ("monitoring/prometheus", 8080, {"method": "GET", "path": "/healthz", "headers": {"Accept": "*/*"},
                                         "host": "10.244.2.31:8080"}, "allowed", "dropped")]
    assert dropped[0]["before"]["l7"]["passes"] == "GET"
    assert dropped[0]["observed"] == {"records": 1, "verdicts": {"REDIRECTED": 1}, "carried": True,
                                      "first": "2026-08-27T15:02:00.218000+00:00",
                                      "last": "2026-08-27T15:02:00.218000+00:00",
                                      "nodes": ["kind-flowcheck/flowcheck-worker2"],
                                      "example": dropped[0]["observed"]["example"]}
    assert [(s["reason"], s["records"]) for s in document["not_replayed"]] == [
        ("reply", 2), ("l7-response", 3), ("source-unmapped", 2)]


def test_base_policies_given_as_paths_give_the_same_answer(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    code, out, _ = run(capsys, "replay", str(FLOWS), *MODEL, "--base-policies", str(POLICIES_DIR))
    assert code == 0
    assert "4 observed paths would be newly dropped by this change" in out


def test_an_export_on_standard_input(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(FLOWS.read_text()))
    code, out, _ = run(capsys, "replay", "-", *ARGS, "--format", "json")
    assert code == 0
    assert json.loads(out)["source"] == "standard input"


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("", "no Hubble flow record found; expected `hubble observe -o json` output"),
    ('{"lost_events": {"num_events_lost": "3"}}\n', "no Hubble flow record found; expected"),
    ("Jun 16 16:52:13.611: default/a -> default/b to-endpoint FORWARDED\n",
     "no Hubble flow record found (line 1 is not JSON)"),
])
def test_an_export_without_a_flow_record_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      content: str | None, message: str) -> None:
    export = tmp_path / "flows.jsonl"
    if content is not None:
        export.write_text(content)
    code, _, err = run(capsys, "replay", str(export), *ARGS)
    assert code == 2
    assert err.startswith(f"flowcheck: error: {export}: ")
    assert message in err


def test_lines_that_are_not_json_are_counted_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "flows.jsonl"
    export.write_text(FLOWS.read_text() + '{"flow": {"time": "2026-08-27T15:0\n')  # cut short mid-line
    code, out, err = run(capsys, "replay", str(export), *ARGS)
    assert code == 0
    assert f"note: {export}: 1 line not JSON (first: line 28), counted as not flows" in err
    assert "2 lines were not a flow" in out.splitlines()[0]
