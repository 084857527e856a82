"""The cilium CLI: install/upgrade arguments, the status gate and report, connectivity test + JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client

from flowcheck.cluster.cilium import (
    OFFLINE_TEST_EXCLUSIONS,
    CiliumCli,
    junit_args,
    kind_cilium_cluster_name,
    number_repeated_attributes,
    parse_junit,
    parse_status_json,
    read_junit,
    running_cluster_name,
)
from flowcheck.errors import ClusterError
from flowcheck.probe.executor import CompletedExec
from tests.cluster.fakes import FakeCluster, FakeRunner, data


def cli(runner: FakeRunner) -> CiliumCli:
    return CiliumCli(runner, "/repo/.bin/cilium", context="kind-flowcheck")


def test_healthy_status_report() -> None:
    report = parse_status_json(data("cilium-status-healthy.json"))
    assert report.healthy
    assert [(c.component, c.kind, c.ready, c.desired) for c in report.pod_state] == [
        ("cilium", "DaemonSet", 3, 3), ("cilium-operator", "Deployment", 1, 1), ("hubble-relay", "Deployment", 1, 1)]
    assert report.image_tags("cilium") == {"v1.19.0"}
    assert (report.pods_all, report.pods_by_cilium) == (9, 9)
    assert report.agent_pods == ("cilium-4xk2p", "cilium-9hq7w", "cilium-tz5lm")
    assert report.summary() == ("Cilium healthy: chart 1.19.0; cilium 3/3, cilium-operator 1/1, hubble-relay 1/1")


def test_unhealthy_status_report_lists_each_problem() -> None:
    report = parse_status_json(data("cilium-status-unhealthy.json"))
    assert not report.healthy
    lines = report.problem_lines()
    assert lines[0] == "cilium (DaemonSet): 2/3 ready, 1 unavailable"
    assert "cilium cilium: error: controller sync-host-ips is failing since 42s (7x): unable to list node IPs" in lines
    assert not any("hubble-relay" in line for line in lines)  # disabled component: not a problem
    assert "status collection error: (an error whose text the JSON output does not include)" in lines
    assert len(lines) == 3
    assert report.image_tags() == {"v1.18.4"}


def test_status_report_accepts_string_errors_and_ignores_unknown_keys() -> None:
    report = parse_status_json('{"pods_count":{"all":1,"by_cilium":1},"errors":{"cilium":{"cilium-x":'
                               '{"Errors":["unable to retrieve cilium status"],"Warnings":["slow"]}}},'
                               '"future_key":{"x":1}}')
    assert report.problem_lines() == ["cilium cilium-x: error: unable to retrieve cilium status",
                                      "cilium cilium-x: warning: slow"]
    assert report.problem_lines(include_warnings=False) == ["cilium cilium-x: error: unable to retrieve cilium status"]


def test_status_output_that_is_not_json_is_a_clear_error() -> None:
    with pytest.raises(ClusterError, match="not JSON"):
        parse_status_json("    /¯¯\\\n Cilium: OK")


def test_install_uses_the_pinned_version_values_and_cluster_specific_api_host() -> None:
    runner = FakeRunner()
    runner.on("cilium", "install")
    cli(runner).install(version="1.19.0", values=Path("manifests/cilium/values.yaml"), cluster_name="ci")
    assert runner.commands() == [["cilium", "install", "--context", "kind-flowcheck", "--version", "1.19.0",
                                  "--values", "manifests/cilium/values.yaml",
                                  "--set", "k8sServiceHost=ci-control-plane", "--set", "cluster.name=kind-ci"]]


def test_upgrade_is_the_same_command_with_upgrade() -> None:
    argv = cli(FakeRunner()).install_argv(version="1.19.0", values=Path("v.yaml"), cluster_name="flowcheck",
                                          upgrade=True)
    assert argv[1] == "upgrade" and "k8sServiceHost=flowcheck-control-plane" in argv
    assert argv[-2:] == ["--set", "cluster.name=kind-flowcheck"]  # `cilium upgrade` would not auto-detect it


def test_an_upgrade_can_keep_the_name_a_cluster_runs_with() -> None:
    argv = cli(FakeRunner()).install_argv(version="1.20.0", values=Path("v.yaml"), cluster_name="flowcheck",
                                          upgrade=True, cilium_cluster_name="staging-eu1")
    assert argv[-2:] == ["--set", "cluster.name=staging-eu1"]


@pytest.mark.parametrize(("kind_name", "cilium_name"), [("flowcheck", "kind-flowcheck"), ("ci_2", "kind-ci-2")])
def test_the_cluster_name_is_what_cilium_install_auto_detects_on_kind(kind_name: str, cilium_name: str) -> None:
    assert kind_cilium_cluster_name(kind_name) == cilium_name


def test_failed_install_quotes_the_cli() -> None:
    runner = FakeRunner()
    runner.on("cilium", "install", returncode=1, stderr="Error: Unable to install Cilium: context deadline exceeded\n")
    with pytest.raises(ClusterError, match=r"(?s)installing Cilium 1.19.0 failed \(exit 1.*context deadline exceeded"):
        cli(runner).install(version="1.19.0", values=Path("v.yaml"), cluster_name="flowcheck")


def test_wait_ready_is_status_wait_then_the_json_report() -> None:
    runner = FakeRunner()
    runner.on("cilium", "status", stdout=data("cilium-status-healthy.json"))
    report = cli(runner).wait_ready(300)
    assert report.healthy
    assert runner.commands() == [
        ["cilium", "status", "--context", "kind-flowcheck", "--wait", "--wait-duration", "300s", "--interactive=false"],
        ["cilium", "status", "--context", "kind-flowcheck", "-o", "json"]]


def test_wait_timeout_names_what_is_wrong() -> None:
    runner = FakeRunner()

    def status(argv: list[str]) -> CompletedExec:
        if "--wait" in argv:
            return CompletedExec(1, "", "\nError: Unable to determine status:  timeout while waiting for status to "
                                        "become successful: context deadline exceeded\n")
        return CompletedExec(0, data("cilium-status-unhealthy.json"), "")

    runner.on("cilium", "status", result=status)
    with pytest.raises(ClusterError) as err:
        cli(runner).wait_ready(600)
    message = str(err.value)
    assert "Cilium did not become ready within 600 s" in message
    assert "timeout while waiting for status" in message
    assert "cilium (DaemonSet): 2/3 ready, 1 unavailable" in message


def test_connectivity_test_argv_excludes_internet_scenarios_and_disables_flow_validation(tmp_path: Path) -> None:
    argv = cli(FakeRunner()).connectivity_test_argv(junit_file=tmp_path / "j.xml")
    assert argv[1:] == ["connectivity", "test", "--context", "kind-flowcheck", "--junit-file", str(tmp_path / "j.xml"),
                        "--flow-validation=disabled", "--test", "!/pod-to-world", "--test", "!/pod-to-cidr"]
    assert OFFLINE_TEST_EXCLUSIONS == ("!/pod-to-world", "!/pod-to-cidr")


def test_junit_gives_one_result_per_test() -> None:
    results = parse_junit(data("connectivity-junit.xml"))
    assert [(r.name, r.status) for r in results] == [
        ("no-policies", "passed"), ("to-fqdns", "skipped"),
        ("client-with-service-account-egress-to-echo-port-range", "failed"), ("echo-ingress-l7", "passed")]
    failed = results[2]
    assert failed.message == "client-with-service-account-egress-to-echo-port-range failed"
    assert "failed: command terminated with exit code 28" in failed.failure_text
    assert ("pod-to-pod:curl-ipv4-0: cilium-test-1/client-645b68dcf7-k89cg (10.244.2.126) -> "
            "cilium-test-1/echo-other-node-55cbc5fc57-bnhch (10.244.1.62:8080)") in failed.failure_text
    assert results[1].message == "to-fqdns skipped" and results[0].time_s == pytest.approx(12.2)
    assert junit_args(data("connectivity-junit.xml"))[-2:] == ("--test", "!/pod-to-cidr")


def test_junit_setup_failure_is_a_failed_result() -> None:
    (result,) = parse_junit(data("connectivity-junit-provisioning-failure.xml"))
    assert (result.name, result.status) == ("Infrastructure/Provisioning", "failed")
    assert "timeout reached waiting for deployment cilium-test-1/client" in result.failure_text


def test_connectivity_test_reports_failures_without_raising(tmp_path: Path) -> None:
    junit = tmp_path / "cilium-junit.xml"
    runner = FakeRunner()

    def run(argv: list[str]) -> CompletedExec:
        junit.write_text(data("connectivity-junit.xml"))
        return CompletedExec(1, "", "[cilium-test-1] 1 tests failed\n")

    runner.on("cilium", "connectivity", "test", result=run)
    report = cli(runner).connectivity_test(junit_file=junit)
    assert not report.ok and report.returncode == 1
    assert [r.name for r in report.with_status("failed")] == ["client-with-service-account-egress-to-echo-port-range"]
    assert report.summary() == "cilium connectivity test: 2 passed, 1 failed, 1 skipped (exit 1)"


def test_connectivity_test_without_junit_is_an_error(tmp_path: Path) -> None:
    runner = FakeRunner()
    runner.on("cilium", "connectivity", "test", returncode=1, stderr="Error: unable to create Kubernetes client\n")
    with pytest.raises(ClusterError, match=r"(?s)wrote no JUnit file.*unable to create Kubernetes client"):
        cli(runner).connectivity_test(junit_file=tmp_path / "missing.xml")


def test_invalid_junit_is_a_clear_error() -> None:
    with pytest.raises(ClusterError, match="not valid XML"):
        parse_junit("<testsuites><testcase")


def test_a_test_with_two_failed_actions_keeps_both_failure_messages_in_order() -> None:
    text = data("connectivity-junit-two-failed-actions.xml")
    with pytest.raises(ET.ParseError, match="duplicate attribute"):
        ET.fromstring(text)  # what a strict parser makes of Go's repeated attribute: the whole file lost
    results, args = read_junit(text)
    assert [(r.name, r.status) for r in results] == [("no-policies", "passed"), ("client-egress-l7", "failed")]
    failed = results[1]
    assert len(failed.failure_messages) == 2
    assert failed.failure_messages[0].endswith('10.244.1.62:8080/" failed: command terminated with exit code 28')
    assert failed.failure_messages[1].endswith('10.244.2.71:8080/" failed: command terminated with exit code 22')
    assert failed.failure_text.splitlines() == [
        *failed.failure_messages,
        "client-egress-l7/pod-to-pod:curl-ipv4-0: cilium-test-1/client2-66475877c6-bghj6 (10.244.2.130) -> "
        "cilium-test-1/echo-other-node-55cbc5fc57-bnhch (10.244.1.62:8080)",
        "client-egress-l7/pod-to-pod:curl-ipv4-1: cilium-test-1/client2-66475877c6-bghj6 (10.244.2.130) -> "
        "cilium-test-1/echo-same-node-798cc5d967-jh4jv (10.244.2.71:8080)"]
    assert args[-2:] == ("--test", "!/pod-to-cidr")
    assert junit_args(text) == args


def test_a_single_failure_message_is_one_message() -> None:
    (_, _, failed, _) = parse_junit(data("connectivity-junit.xml"))
    assert len(failed.failure_messages) == 1 and "exit code 28" in failed.failure_messages[0]
    (setup,) = parse_junit(data("connectivity-junit-provisioning-failure.xml"))
    assert setup.failure_messages == ()


@pytest.mark.parametrize(("text", "expected"), [
    ('<a x="1" x="2" x="3"/>', '<a x="1" x.2="2" x.3="3"/>'),
    ("<a x='1' y=\"2\" x='&lt;b x=\"3\"&gt;'>t</a>", "<a x='1' y=\"2\" x.2='&lt;b x=\"3\"&gt;'>t</a>"),
    ('<a\n  x = "1"\n  x="2"\n>', '<a\n  x = "1"\n  x.2="2"\n>'),
    ('<!-- <a x="1" x="2"> --><b/>', '<!-- <a x="1" x="2"> --><b/>'),
    ('<a><![CDATA[<b x="1" x="2">]]></a>', '<a><![CDATA[<b x="1" x="2">]]></a>'),
    ('<?xml version="1.0"?><a x="1" y="2"></a>', '<?xml version="1.0"?><a x="1" y="2"></a>'),
])
def test_only_repeated_attributes_of_start_tags_are_renumbered(text: str, expected: str) -> None:
    assert number_repeated_attributes(text) == expected


_MESSAGES = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), include_characters="\t\n\r"),
                             max_size=20), min_size=1, max_size=4)


def _go_escaped(value: str) -> str:
    """Go's ``xml.EscapeString`` (what encoding/xml writes for an attribute value)."""
    table = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "\t": "&#x9;", "\n": "&#xA;",
             "\r": "&#xD;"}
    return "".join(table.get(ch, ch) for ch in value)


@given(_MESSAGES)
def test_every_repeated_failure_message_survives_in_order(messages: list[str]) -> None:
    """As Go's encoding/xml writes a []string attribute: once per element, each value escaped."""
    repeated = "".join(f' failureMessage="{_go_escaped(m)}"' for m in messages)
    text = (f'<testsuites><testsuite><testcase name="t" status="failed"><failure message="t failed"{repeated} '
            'type="failure">action</failure></testcase></testsuite></testsuites>')
    (result,) = parse_junit(text)
    assert result.failure_messages == tuple(messages)


def test_the_running_cluster_name_is_read_from_cilium_config() -> None:
    cluster = FakeCluster()
    assert running_cluster_name(cluster.clients()) is None  # no Cilium installed by its chart
    cluster.config_maps[("kube-system", "cilium-config")] = client.V1ConfigMap(data={"cluster-name": "staging-eu1"})
    assert running_cluster_name(cluster.clients()) == "staging-eu1"
    cluster.config_maps[("kube-system", "cilium-config")] = client.V1ConfigMap(data={"cluster-id": "0"})
    assert running_cluster_name(cluster.clients()) == "default"  # the agents' default when the key is absent
