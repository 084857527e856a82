"""Cilium through its CLI: install/upgrade, the readiness gate, and ``cilium connectivity test``.

What the CLI prints is taken from cilium-cli's source as documented in the project's reference
notes; nothing here was run against a cluster. In particular:

* ``cilium status --wait`` is the readiness gate: only with ``--wait`` do component errors change
  the exit code. ``cilium status -o json`` is parsed for the report; its shape comes from the Go
  struct tags of cilium-cli's ``status/status.go`` (no captured real sample exists), so the parser
  reads the documented keys and tolerates anything else. Each ``errors`` entry's ``Errors`` and
  ``Warnings`` are lists of strings (``ErrorCount.MarshalJSON`` converts the Go ``error`` values, and
  writes ``[]`` when there are none); ``collection_errors`` is a plain ``[]error``, whose values
  marshal as ``{}`` and so carry no text.
* ``cilium connectivity test --junit-file`` writes one ``<testcase>`` per test with ``status``
  passed/skipped/failed and the failed actions as the ``<failure>`` text; that file -- not the
  emoji console output -- is the result. ``--test '!/pod-to-world' --test '!/pod-to-cidr'`` skip
  the scenarios that need the internet (regex substring match, so ``!/pod-to-world`` also skips
  ``pod-to-world-2``). Flow validation is disabled by default because it needs a port-forward to
  Hubble Relay; with the CLI's default (``warning``) and no Relay it is silently dropped anyway.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowcheck.cluster import kube
from flowcheck.cluster.kind import context_for, control_plane_node
from flowcheck.cluster.kube import KubeClients
from flowcheck.cluster.process import ProcessRunner, command_line, run_checked, tail
from flowcheck.cluster.realization import CILIUM_NAMESPACE
from flowcheck.cluster.versions import image_tag
from flowcheck.errors import ClusterError

OFFLINE_TEST_EXCLUSIONS: tuple[str, ...] = ("!/pod-to-world", "!/pod-to-cidr")
STATUS_WAIT_S = 600.0
INSTALL_TIMEOUT_S = 900.0
CONNECTIVITY_TIMEOUT_S = 3600.0  # a full run takes 6-12 minutes upstream; allow for slow runners
QUERY_TIMEOUT_S = 120.0


# ---------------------------------------------------------------------------------------------
# `cilium status -o json`


@dataclass(frozen=True, slots=True)
class ComponentState:
    """One ``pod_state`` entry: a DaemonSet or Deployment and its pod counts."""

    component: str
    kind: str
    desired: int
    ready: int
    available: int
    unavailable: int

    @property
    def ok(self) -> bool:
        return self.ready >= self.desired and self.unavailable == 0


@dataclass(frozen=True, slots=True)
class ComponentProblem:
    """One ``errors`` entry: what a component (or one of its pods) reports."""

    component: str
    source: str
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    disabled: bool


@dataclass(frozen=True, slots=True)
class CiliumStatusReport:
    """``cilium status -o json``, typed. ``healthy`` is what ``--wait`` waits for."""

    pod_state: tuple[ComponentState, ...]
    problems: tuple[ComponentProblem, ...]
    collection_errors: tuple[str, ...]
    config_errors: tuple[str, ...]
    helm_chart_version: str
    images: tuple[tuple[str, str, int], ...]  # (component, image, pod count)
    pods_all: int | None
    pods_by_cilium: int | None
    agent_pods: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.problem_lines(include_warnings=False)

    def problem_lines(self, *, include_warnings: bool = True) -> list[str]:
        """Human lines: components not ready, errors (and warnings), collection and config errors."""
        lines = [f"{c.component} ({c.kind}): {c.ready}/{c.desired} ready, {c.unavailable} unavailable"
                 for c in self.pod_state if not c.ok]
        for p in self.problems:
            if p.disabled:
                continue
            lines += [f"{p.component} {p.source}: error: {e}" for e in p.errors]
            if include_warnings:
                lines += [f"{p.component} {p.source}: warning: {w}" for w in p.warnings]
        lines += [f"status collection error: {e}" for e in self.collection_errors]
        lines += [f"configuration error: {e}" for e in self.config_errors]
        return lines

    def image_tags(self, component: str = "cilium") -> set[str]:
        """The tags (``v1.19.0``) of ``component``'s images, digests stripped."""
        return {tag for comp, image, _count in self.images if comp == component and (tag := image_tag(image))}

    def summary(self) -> str:
        ready = ", ".join(f"{c.component} {c.ready}/{c.desired}" for c in self.pod_state)
        version = f"chart {self.helm_chart_version}; " if self.helm_chart_version else ""
        state = "healthy" if self.healthy else f"{len(self.problem_lines(include_warnings=False))} problem(s)"
        return f"Cilium {state}: {version}{ready or 'no components reported'}"


def parse_status_json(text: str) -> CiliumStatusReport:
    """Parse ``cilium status -o json`` (documented keys only; unknown keys are ignored)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClusterError(f"`cilium status -o json` printed something that is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ClusterError("`cilium status -o json` printed JSON that is not an object")
    pod_state = []
    for component, state in sorted(_mapping(data.get("pod_state")).items()):
        st = _mapping(state)
        pod_state.append(ComponentState(component, str(st.get("Type", "")), _int(st.get("Desired")),
                                        _int(st.get("Ready")), _int(st.get("Available")),
                                        _int(st.get("Unavailable"))))
    problems = []
    for component, by_source in sorted(_mapping(data.get("errors")).items()):
        for source, counts in sorted(_mapping(by_source).items()):
            c = _mapping(counts)
            # ErrorCount's keys are its Go field names (CamelCase); accept lowercase too.
            problems.append(ComponentProblem(component, source, _texts(c.get("Errors", c.get("errors"))),
                                             _texts(c.get("Warnings", c.get("warnings"))),
                                             bool(c.get("Disabled", c.get("disabled", False)))))
    images = []
    for component, by_image in sorted(_mapping(data.get("image_count")).items()):
        for image, count in sorted(_mapping(by_image).items()):
            images.append((component, image, _int(count)))
    pods_count = _mapping(data.get("pods_count"))
    return CiliumStatusReport(
        pod_state=tuple(pod_state),
        problems=tuple(problems),
        collection_errors=_texts(data.get("collection_errors")),
        config_errors=_texts(data.get("config_errors")),
        helm_chart_version=str(data.get("helm_chart_version") or ""),
        images=tuple(images),
        pods_all=_int(pods_count["all"]) if "all" in pods_count else None,
        pods_by_cilium=_int(pods_count["by_cilium"]) if "by_cilium" in pods_count else None,
        agent_pods=tuple(sorted(_mapping(data.get("cilium_status")))),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _texts(value: Any) -> tuple[str, ...]:
    """Error lists: strings (``errors``), or Go ``error`` values marshalled as objects, usually ``{}``
    (``collection_errors``); anything that is not a list (``null`` from an older CLI) is no errors."""
    if not isinstance(value, list):
        return ()
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and item:
            out.append(json.dumps(item, sort_keys=True))
        else:
            out.append("(an error whose text the JSON output does not include)")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# `cilium connectivity test --junit-file`


@dataclass(frozen=True, slots=True)
class ConnectivityTestResult:
    """One ``<testcase>`` of the connectivity test's JUnit file (one per cilium test, not per action).

    ``failure_messages`` are the ``failureMessage`` attributes of the ``<failure>``, in file order
    (one per failed action's error; see ``read_junit``); ``failure_text`` is those messages and the
    failure's text (the failed action strings), one per line.
    """

    name: str
    status: str  # passed | failed | skipped
    time_s: float
    message: str
    failure_text: str
    failure_messages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectivityReport:
    """What ``cilium connectivity test`` reported: per-test results from JUnit, and the exit code."""

    results: tuple[ConnectivityTestResult, ...]
    returncode: int
    junit_file: str
    args: tuple[str, ...]

    def with_status(self, status: str) -> list[ConnectivityTestResult]:
        return [r for r in self.results if r.status == status]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.with_status("failed")

    def summary(self) -> str:
        counts = {s: len(self.with_status(s)) for s in ("passed", "failed", "skipped")}
        return (f"cilium connectivity test: {counts['passed']} passed, {counts['failed']} failed, "
                f"{counts['skipped']} skipped (exit {self.returncode})")


# cilium-cli's writer (connectivity/internal/junit/junit.go) declares
#     FailureMessages []string `xml:"failureMessage,attr,omitempty"`
# and Go's encoding/xml writes one attribute per slice element, so a test with two failed actions
# carries `failureMessage="..."` twice on one <failure>. XML forbids a repeated attribute and every
# conforming parser (expat, hence ElementTree) rejects the whole file. Before parsing, the 2nd, 3rd,
# ... occurrence of an attribute in a start tag is renamed `<name>.2`, `<name>.3`, ... (a valid XML
# name Go never writes); `_attribute_values` reads them back in order. Only start tags are touched:
# comments, CDATA sections, processing instructions and declarations are matched whole and kept as
# they are, and text cannot hold a raw `<` in XML, so nothing else can look like a start tag.
_MARKUP = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<![^>]*>"
    r"|<(?P<tag>[^\s/>!?][^\s/>]*)(?P<attributes>(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)(?P<end>\s*/?>)",
    re.DOTALL)
_ATTRIBUTE = re.compile(r"(?P<space>\s+)(?P<name>[^\s=/>]+)(?P<rest>\s*=\s*(?:\"[^\"]*\"|'[^']*'))")
_REPEAT_SEPARATOR = "."


def number_repeated_attributes(text: str) -> str:
    """``<a x="1" x="2">`` -> ``<a x="1" x.2="2">``: XML a strict parser accepts, nothing lost."""

    def start_tag(match: re.Match[str]) -> str:
        attributes = match.group("attributes")
        if match.group("tag") is None or not attributes:
            return match.group(0)
        seen: dict[str, int] = {}

        def rename(attribute: re.Match[str]) -> str:
            name = attribute.group("name")
            seen[name] = seen.get(name, 0) + 1
            if seen[name] == 1:
                return attribute.group(0)
            return f"{attribute.group('space')}{name}{_REPEAT_SEPARATOR}{seen[name]}{attribute.group('rest')}"

        renamed = _ATTRIBUTE.sub(rename, attributes)
        return f"<{match.group('tag')}{renamed}{match.group('end')}"

    return _MARKUP.sub(start_tag, text)


def _attribute_values(element: ET.Element, name: str) -> list[str]:
    """Every value of ``name`` on ``element`` in file order, repeats included (see ``number_repeated_attributes``)."""
    values = []
    first = element.get(name)
    if first is not None:
        values.append(first)
        index = 2
        while (value := element.get(f"{name}{_REPEAT_SEPARATOR}{index}")) is not None:
            values.append(value)
            index += 1
    return values


def _junit_root(text: str) -> ET.Element:
    try:
        return ET.fromstring(number_repeated_attributes(text))
    except ET.ParseError as exc:
        raise ClusterError(f"the connectivity test's JUnit file is not valid XML: {exc}") from exc


def read_junit(text: str) -> tuple[tuple[ConnectivityTestResult, ...], tuple[str, ...]]:
    """The results and the ``Args`` property of cilium-cli's JUnit file, parsed once."""
    root = _junit_root(text)
    return _results(root), _args(root)


def parse_junit(text: str) -> tuple[ConnectivityTestResult, ...]:
    """Parse cilium-cli's JUnit file (``<testsuites><testsuite><testcase status=...>``)."""
    return _results(_junit_root(text))


def _results(root: ET.Element) -> tuple[ConnectivityTestResult, ...]:
    results = []
    for case in root.iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        status = case.get("status") or ("failed" if failure is not None else
                                        "skipped" if skipped is not None else "passed")
        message = ""
        failure_text = ""
        details: list[str] = []
        if failure is not None:
            details = _attribute_values(failure, "failureMessage")
            message = failure.get("message") or ""
            failure_text = "\n".join(t for t in (*details, (failure.text or "").strip()) if t)
        elif skipped is not None:
            message = skipped.get("message") or ""
        try:
            time_s = float(case.get("time") or 0)
        except ValueError:
            time_s = 0.0
        results.append(ConnectivityTestResult(case.get("name") or "", status, time_s, message, failure_text,
                                              tuple(details)))
    return tuple(results)


def junit_args(text: str) -> tuple[str, ...]:
    """The ``Args`` property (the arguments after ``cilium connectivity test``, joined by ``|``)."""
    try:
        return _args(_junit_root(text))
    except ClusterError:
        return ()


def _args(root: ET.Element) -> tuple[str, ...]:
    for prop in root.iter("property"):
        if prop.get("name") == "Args":
            value = prop.get("value") or ""
            return tuple(value.split("|")) if value else ()
    return ()


# ---------------------------------------------------------------------------------------------
# The CLI


# Where the running agents' configuration lives (the chart's ConfigMap) and the key that names the
# cluster; Cilium's own default when none is set (``pkg/defaults``: ``ClusterName = "default"``).
CILIUM_CONFIG_MAP = "cilium-config"
CLUSTER_NAME_KEY = "cluster-name"
CILIUM_DEFAULT_CLUSTER_NAME = "default"


def kind_cilium_cluster_name(cluster_name: str) -> str:
    """The ``cluster.name`` ``cilium install`` auto-detects on kind cluster ``cluster_name``: ``kind-<name>``.

    cilium-cli's ``install/autodetect.go`` takes the kubeconfig cluster's name (kind writes
    ``kind-<name>``) with ``_`` replaced by ``-``, and ``install/helm.go`` sets it as ``cluster.name``.
    ``cilium upgrade`` does not: with ``--reset-values`` the chart default ``default`` comes back,
    which changes every identity's ``io.cilium.k8s.policy.cluster`` label mid-check. So flowcheck
    names the cluster itself, the same way, in every install and upgrade it runs.
    """
    return context_for(cluster_name).replace("_", "-")


def running_cluster_name(clients: KubeClients) -> str | None:
    """The cluster name the running Cilium uses: ``kube-system/cilium-config`` key ``cluster-name``.

    ``None`` when that ConfigMap does not exist (no Cilium installed by its chart). A ConfigMap without
    the key means the agents run with Cilium's default name, ``default``.
    """
    config = kube.read_or_none(clients, f"reading {CILIUM_NAMESPACE}/{CILIUM_CONFIG_MAP}",
                               clients.core.read_namespaced_config_map, CILIUM_CONFIG_MAP, CILIUM_NAMESPACE)
    if config is None:
        return None
    data = config.data or {}
    name = data.get(CLUSTER_NAME_KEY)
    return str(name) if name else CILIUM_DEFAULT_CLUSTER_NAME


def kind_service_host(cluster_name: str) -> str:
    """``k8sServiceHost=<name>-control-plane``: where Cilium without kube-proxy finds a kind cluster's API server.

    The Helm value every install, upgrade and preflight release on flowcheck's kind cluster sets:
    the values file can only carry the default cluster name's node.
    """
    return f"k8sServiceHost={control_plane_node(cluster_name)}"


class CiliumCli:
    """The cilium CLI commands flowcheck runs, always with an explicit ``--context``."""

    def __init__(self, runner: ProcessRunner, cilium_path: str, *, context: str, kubeconfig: str | None = None,
                 progress: Callable[[str], None] = lambda _line: None) -> None:
        self._runner = runner
        self._cilium = cilium_path
        self.context = context
        self._kubeconfig = kubeconfig
        self._progress = progress

    def _global(self) -> list[str]:
        flags = ["--context", self.context]
        if self._kubeconfig:
            flags += ["--kubeconfig", self._kubeconfig]
        return flags

    def install_argv(self, *, version: str, values: Path, cluster_name: str, upgrade: bool = False,
                     cilium_cluster_name: str | None = None) -> list[str]:
        """``cilium install|upgrade`` with the pinned chart version and flowcheck's Helm values.

        ``k8sServiceHost`` is the control-plane node's container name on kind's Docker network; the
        values file carries the default cluster name's, so it is set for the actual name.
        ``cluster.name`` is always explicit: ``cilium_cluster_name`` (an upgrade keeps the name the
        cluster runs with), else what ``cilium install`` would auto-detect (``kind_cilium_cluster_name``).
        """
        name = cilium_cluster_name or kind_cilium_cluster_name(cluster_name)
        return [self._cilium, "upgrade" if upgrade else "install", *self._global(), "--version", version,
                "--values", str(values), "--set", kind_service_host(cluster_name), "--set", f"cluster.name={name}"]

    def install(self, *, version: str, values: Path, cluster_name: str, upgrade: bool = False,
                cilium_cluster_name: str | None = None) -> None:
        verb = "upgrading" if upgrade else "installing"
        run_checked(self._runner, self.install_argv(version=version, values=values, cluster_name=cluster_name,
                                                    upgrade=upgrade, cilium_cluster_name=cilium_cluster_name),
                    what=f"{verb} Cilium {version}", timeout_s=INSTALL_TIMEOUT_S)

    def status(self) -> CiliumStatusReport:
        """``cilium status -o json`` (no wait: a snapshot for the report)."""
        result = self._runner.run([self._cilium, "status", *self._global(), "-o", "json"], timeout_s=QUERY_TIMEOUT_S)
        if not result.stdout.strip():
            raise ClusterError(f"`cilium status -o json` printed nothing (exit {result.returncode}){tail(result)}")
        return parse_status_json(result.stdout)

    def wait_ready(self, wait_s: float = STATUS_WAIT_S) -> CiliumStatusReport:
        """The readiness gate: ``cilium status --wait`` until no errors, then the JSON report.

        On a timeout the error carries the parsed report's problems when they can be read.
        """
        argv = [self._cilium, "status", *self._global(), "--wait", "--wait-duration", f"{int(wait_s)}s",
                "--interactive=false"]
        result = self._runner.run(argv, timeout_s=wait_s + 60)
        if result.returncode != 0:
            detail = ""
            try:
                problems = self.status().problem_lines()
                detail = ("\n" + "\n".join("    " + p for p in problems)) if problems else ""
            except ClusterError:
                pass
            raise ClusterError(f"Cilium did not become ready within {int(wait_s)} s "
                               f"(`{command_line(argv)}` exit {result.returncode}){tail(result, 4)}{detail}")
        return self.status()

    def connectivity_test_argv(self, *, junit_file: Path, tests: Sequence[str] = OFFLINE_TEST_EXCLUSIONS,
                               flow_validation: str = "disabled", extra_args: Sequence[str] = ()) -> list[str]:
        argv = [self._cilium, "connectivity", "test", *self._global(), "--junit-file", str(junit_file),
                f"--flow-validation={flow_validation}"]
        for test in tests:
            argv += ["--test", test]
        return argv + list(extra_args)

    def connectivity_test(self, *, junit_file: Path, tests: Sequence[str] = OFFLINE_TEST_EXCLUSIONS,
                          flow_validation: str = "disabled", extra_args: Sequence[str] = (),
                          timeout_s: float = CONNECTIVITY_TIMEOUT_S) -> ConnectivityReport:
        """Run the connectivity test and read its JUnit file; failed tests are reported, not raised.

        Raises ``ClusterError`` only when no JUnit file was written (the CLI itself failed).
        """
        argv = self.connectivity_test_argv(junit_file=junit_file, tests=tests, flow_validation=flow_validation,
                                           extra_args=extra_args)
        self._progress(f"running `{command_line(argv)}` (several minutes)")
        result = self._runner.run(argv, timeout_s=timeout_s)
        try:
            text = junit_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ClusterError(f"cilium connectivity test wrote no JUnit file {junit_file} "
                               f"(exit {result.returncode}){tail(result)}") from exc
        results, args = read_junit(text)
        return ConnectivityReport(results, result.returncode, str(junit_file), args)
