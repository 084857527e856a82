"""One question, one answer: a flow written as ``explain`` options, a flows file, ``flowcheck_paths.expect``
or an intent entry means the same flow and gets the same verdict -- or the same mistake
(docs/contracts.md, "Flow file": what a missing protocol or port means, and port names)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowcheck.cli import main
from flowcheck.errors import InputError
from flowcheck.harness.checker import HarnessContext, PathChecker
from flowcheck.harness.intent_file import parse_intent
from flowcheck.model.engine import Model
from flowcheck.model.flows import load_flows
from flowcheck.model.policies import load_policies
from flowcheck.model.topology import load_topology
from tests.conftest import POLICIES_DIR, REPO_ROOT

# This repository's topology, plus a workload serving one port name under two protocols (Kubernetes
# allows it across containers): a name that cannot say which protocol it means.
DUAL = {"name": "dual", "namespace": "default", "labels": {"app": "dual"},
        "ports": [{"name": "both", "port": 5353, "protocol": "UDP"},
                  {"name": "both", "port": 5353, "protocol": "TCP"}]}


@dataclass(frozen=True)
class Question:
    """A flow as a person asks about it: the ends and whichever of port/protocol/dns they give."""

    source: str
    destination: str
    port: int | str | None = None
    protocol: str | None = None
    dns: str | None = None

    def explain_args(self) -> list[str]:
        out = ["--from", self.source, "--to", self.destination]
        for option, value in (("--port", self.port), ("--protocol", self.protocol), ("--dns-query", self.dns)):
            if value is not None:
                out += [option, str(value)]
        return out

    def flows_entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.source, "to": self.destination}
        if self.protocol is not None:
            out["protocol"] = self.protocol
        if self.port is not None:
            out["port"] = self.port
        if self.dns is not None:
            out["dns"] = {"query": self.dns}
        return out

    def intent_entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.source, "to": self.destination, "verdict": "allowed"}
        for key in ("port", "protocol", "dns"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Setup:
    topology_path: Path
    model: Model


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    data = yaml.safe_load((REPO_ROOT / "fixtures" / "topology.yaml").read_text())
    data["workloads"].append(DUAL)
    path = tmp_path_factory.mktemp("contract") / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    return Setup(path, Model(load_topology(path), load_policies([str(POLICIES_DIR)]), "cilium"))


Answer = tuple[dict[str, Any], str]
"""A flow as the flows file writes it, and its verdict."""


def by_explain(setup: Setup, question: Question, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Answer:
    code = main(["explain", "--topology", str(setup.topology_path), "--policies", str(POLICIES_DIR),
                 *question.explain_args(), "--format", "json"])
    out = capsys.readouterr()
    if code != 0:
        assert code == 2
        [error] = [line for line in out.err.splitlines() if not line.startswith(("note: ", "warning: "))]
        raise InputError(error)
    [decided] = json.loads(out.out)["flows"]
    flow = {k: v for k, v in decided.items() if k in ("from", "to", "protocol", "port", "dns", "http", "icmp")}
    return flow, decided["verdict"]


def by_flows_file(setup: Setup, question: Question, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Answer:
    path = tmp_path / "flows.yaml"
    path.write_text(yaml.safe_dump([question.flows_entry()]))
    [flow] = load_flows(path, setup.model.topology)
    return flow.to_json(), setup.model.decide(flow).verdict.value


def by_paths_expect(setup: Setup, question: Question, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> Answer:
    context = HarnessContext(setup.model, None, "offline", 1.0, lambda record: None, itertools.count().__next__)
    paths = PathChecker(context, "test_contract")
    try:
        expectation = paths.expect(question.source, question.destination, verdict="allowed", port=question.port,
                                   protocol=question.protocol, dns=question.dns)
    except pytest.fail.Exception as exc:
        raise InputError(str(exc)) from None
    return expectation.flow.to_json(), setup.model.decide(expectation.flow).verdict.value


def by_intent_entry(setup: Setup, question: Question, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> Answer:
    [entry] = parse_intent(yaml.safe_dump([question.intent_entry()]), "team.flowcheck.yaml")
    flow = entry.expectation(setup.model.topology).flow
    return flow.to_json(), setup.model.decide(flow).verdict.value


WAYS: dict[str, Callable[[Setup, Question, Path, pytest.CaptureFixture[str]], Answer]] = {
    "explain": by_explain, "flows file": by_flows_file, "paths.expect": by_paths_expect,
    "intent entry": by_intent_entry}

ANSWERS = [
    pytest.param(Question("default/web", "kube-system/coredns", dns="example.com"),
                 ({"from": "default/web", "to": "kube-system/coredns", "protocol": "UDP", "port": 53,
                   "dns": {"query": "example.com"}}, "allowed"), id="dns query, no port or protocol: UDP/53"),
    pytest.param(Question("monitoring/prometheus", "default/my-api", port="metrics"),
                 ({"from": "monitoring/prometheus", "to": "default/my-api", "protocol": "TCP", "port": 9090},
                  "allowed"), id="port name"),
    pytest.param(Question("default/web", "kube-system/coredns", port="dns"),
                 ({"from": "default/web", "to": "kube-system/coredns", "protocol": "UDP", "port": 53}, "allowed"),
                 id="port name served over UDP brings UDP"),
    pytest.param(Question("default/web", "kube-system/coredns", port="dns-tcp", dns="example.com"),
                 ({"from": "default/web", "to": "kube-system/coredns", "protocol": "TCP", "port": 53,
                   "dns": {"query": "example.com"}}, "dropped"), id="dns query to a TCP port name is TCP"),
    pytest.param(Question("monitoring/prometheus", "default/dual", port="both", protocol="UDP"),
                 ({"from": "monitoring/prometheus", "to": "default/dual", "protocol": "UDP", "port": 5353},
                  "dropped"), id="an explicit protocol picks among a name's protocols"),
]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("question", "answer"), ANSWERS)
def test_every_way_of_asking_gets_one_answer(setup: Setup, way: str, question: Question, answer: Answer,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert WAYS[way](setup, question, tmp_path, capsys) == answer


MISTAKES = [
    pytest.param(Question("default/web", "default/dual", port="both"),
                 ("default/dual serves a port named 'both' under TCP and UDP (UDP/5353 (both), TCP/5353 (both)); "
                  "say which protocol"), "protocol", id="a name served under two protocols"),
    pytest.param(Question("default/web", "kube-system/coredns", port="dns", protocol="TCP"),
                 "kube-system/coredns serves no TCP port named 'dns' (it serves UDP/53 (dns), TCP/53 (dns-tcp))",
                 "port", id="an explicit protocol the name is not served under"),
    pytest.param(Question("default/web", "default/my-api", port="grpc"),
                 "default/my-api serves no port named 'grpc' (it serves TCP/8080 (http), TCP/9090 (metrics))",
                 "port", id="a name the destination does not serve"),
]
WHERE = {"explain": "field --{}: ", "flows file": r"field \[0\]\.{}: ", "paths.expect": "{}=[^ ]*: ",
         "intent entry": "field {}: "}
"""How each way names the field at fault, just before the message."""


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("question", "message", "field"), MISTAKES)
def test_every_way_of_asking_names_the_same_mistake(setup: Setup, way: str, question: Question, message: str,
                                                    field: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError) as caught:
        WAYS[way](setup, question, tmp_path, capsys)
    text = str(caught.value)
    assert re.search(WHERE[way].format(field) + re.escape(message), text), text
    assert "\n" not in text
