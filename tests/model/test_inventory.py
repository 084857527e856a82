"""A topology from a repository's manifests: every workload kind, Services' target ports, namespaces' labels."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flowcheck.manifests.documents import SourceDocument, read_documents
from flowcheck.model.inventory import inventory, topology_yaml
from flowcheck.model.topology import Port, parse_topology

MANIFESTS = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Namespace
    metadata: {name: batch, labels: {team: data, kubernetes.io/metadata.name: batch}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: batch}
spec:
  template:
    metadata: {labels: {job: migrate}}
    spec:
      serviceAccount: migrator
      containers: [{name: m, image: x}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: batch}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {job: report}}
        spec:
          initContainers:
            - {name: proxy, image: x, restartPolicy: Always, ports: [{name: admin, containerPort: 15000}]}
            - {name: wait, image: x, ports: [{containerPort: 1}]}
          containers: [{name: r, image: x, ports: [{name: syslog, containerPort: 514, protocol: UDP}]}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: legacy}
spec:
  template:
    metadata: {labels: {app: legacy}}
    spec: {containers: [{name: l, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: batch, labels: {app: debug}}
spec: {containers: [{name: d, image: x, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: legacy}
spec:
  selector: {app: legacy}
  ports: [{port: 80, targetPort: 8080}, {name: grpc, port: 9000}, {port: 81, targetPort: web}]
"""


def test_every_workload_kind_with_its_labels_ports_and_service_account(tmp_path: Path) -> None:
    (tmp_path / "helm-output.yaml").write_text(MANIFESTS)
    found = inventory(read_documents([tmp_path]))
    topology = found.topology
    assert dict(topology.namespaces["batch"]) == {"team": "data", "kubernetes.io/metadata.name": "batch"}
    assert [w.ref for w in topology.workloads] == ["batch/debug", "batch/migrate", "batch/report", "default/legacy"]
    report = topology.workload("batch/report")
    assert report.labels == {"job": "report"}
    assert report.ports == (Port("admin", 15000, "TCP"), Port("syslog", 514, "UDP"))  # a sidecar serves; init not
    assert topology.workload("batch/migrate").service_account == "migrator"
    # ports only a Service names: its target port, else its port; a target port by name no container has is noted
    assert topology.workload("default/legacy").ports == (Port(None, 8080, "TCP"), Port(None, 9000, "TCP"))
    assert any("sends to port 'web', which no container of default/legacy names" in note for note in found.notes)
    assert any("ReplicaSet legacy has no metadata.namespace; assumed 'default'" in note for note in found.notes)


def test_the_written_topology_reads_back_the_same(tmp_path: Path) -> None:
    (tmp_path / "all.yaml").write_text(MANIFESTS)
    topology = inventory(read_documents([tmp_path])).topology

    def fail(field: str, message: str) -> Exception:
        return AssertionError(f"{field}: {message}")

    text = yaml.safe_dump(topology_yaml(topology))
    assert parse_topology(yaml.safe_load(text), "<written>", fail).workloads == topology.workloads


def test_kube_system_workloads_are_existing() -> None:
    body = yaml.safe_load(textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: coredns, namespace: kube-system}
        spec: {template: {metadata: {labels: {k8s-app: kube-dns}}, spec: {containers: []}}}
    """))
    [workload] = inventory([SourceDocument("x.yaml", 0, None, body)]).topology.workloads
    assert workload.existing


_ANY = st.recursive(st.none() | st.booleans() | st.integers(-1, 70000) | st.text(max_size=8) | st.just("a/b"),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(
                        st.sampled_from(["metadata", "name", "namespace", "labels", "spec", "template", "containers",
                                         "ports", "containerPort", "protocol", "selector", "targetPort", "port",
                                         "jobTemplate", "initContainers", "serviceAccountName", "restartPolicy",
                                         "hostNetwork"]),
                        children, max_size=4), max_leaves=15)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["Deployment", "CronJob", "Pod", "Service", "Namespace", "Job"]), _ANY)
@example("Service", {"spec": {"ports": True}})  # found by this test: a list field holding a scalar
@example("Pod", {"spec": {"containers": True, "initContainers": 1}})
def test_any_manifest_gives_a_topology_or_a_note_never_a_crash(kind: str, rest: Any) -> None:
    body = {"kind": kind, **(rest if isinstance(rest, dict) else {"spec": rest})}
    found = inventory([SourceDocument("fuzz.yaml", 0, None, body)])

    def fail(field: str, message: str) -> Exception:
        return AssertionError(f"{field}: {message}")

    # whatever was read is a topology the loader accepts as written
    parse_topology(yaml.safe_load(yaml.safe_dump(topology_yaml(found.topology))), "<written>", fail)


def test_a_host_network_pod_and_an_unusable_port_are_left_out_with_a_note() -> None:
    """A hostNetwork pod has its node's identity in Cilium: as a workload, every verdict for it would be wrong."""
    agent = yaml.safe_load(textwrap.dedent("""\
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: node-agent, namespace: ops}
        spec: {template: {metadata: {labels: {app: node-agent}}, spec: {hostNetwork: true, containers: [{name: a}]}}}
    """))
    web = yaml.safe_load(textwrap.dedent("""\
        apiVersion: v1
        kind: Pod
        metadata: {name: web, namespace: ops, labels: {app: web}}
        spec: {containers: [{name: w, ports: [{containerPort: "abc"}, {containerPort: 8080, name: http}]}]}
    """))
    found = inventory([SourceDocument("a.yaml", 0, None, agent), SourceDocument("b.yaml", 0, None, web)])
    assert [w.ref for w in found.topology.workloads] == ["ops/web"]
    assert [p.describe() for p in found.topology.workload("ops/web").ports] == ["TCP/8080 (http)"]
    assert any("DaemonSet node-agent runs with hostNetwork: true" in n and "left out" in n for n in found.notes)
    assert any("Pod web: container 'w' ports[0] left out: expected containerPort 1-65535" in n and "'abc'" in n
               for n in found.notes)


DNS_EGRESS = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: fqdn, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: bot}}
  egress:
    - toFQDNs: [{matchName: api.github.com}]
    - toEndpoints: [{matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, "k8s:k8s-app": kube-dns}}]
      toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]
"""
BOT = "apiVersion: v1\nkind: Pod\nmetadata: {name: bot, namespace: default, labels: {app: bot}}\nspec: {}\n"


def _policies(tmp_path: Path, text: str) -> Any:
    from flowcheck.model.policies import load_policies

    (tmp_path / "p.yaml").write_text(text)
    return load_policies([tmp_path / "p.yaml"])


def _bot_topology(tmp_path: Path, extra: str = "") -> Any:
    (tmp_path / "deploy.yaml").write_text(BOT + extra)
    return inventory(read_documents([tmp_path / "deploy.yaml"])).topology


def test_the_clusters_dns_is_added_when_the_policies_select_it_and_the_manifests_lack_it(tmp_path: Path) -> None:
    from flowcheck.model.inventory import with_cluster_dns

    topology, note = with_cluster_dns(_bot_topology(tmp_path), _policies(tmp_path, DNS_EGRESS))
    dns = topology.workload("kube-system/kube-dns")
    assert dns.existing and [p.describe() for p in dns.ports] == ["UDP/53 (dns)", "TCP/53 (dns-tcp)"]
    assert note is not None and note.startswith("kube-system/kube-dns: added as an existing workload")
    assert topology_yaml(topology)["namespaces"] == {"default": {}, "kube-system": {}}


def test_the_clusters_dns_is_not_added_when_nothing_selects_it_or_a_dns_server_is_there(tmp_path: Path) -> None:
    from flowcheck.model.inventory import with_cluster_dns

    unrelated = DNS_EGRESS.replace("kube-dns", "other-dns")
    bare = _bot_topology(tmp_path)
    assert with_cluster_dns(bare, _policies(tmp_path, unrelated)) == (bare, None)
    served = _bot_topology(tmp_path, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: dns, namespace: default, "
                                     "labels: {app: dns}}\nspec: {containers: [{name: d, image: x, ports: "
                                     "[{containerPort: 53, protocol: UDP}]}]}\n")
    assert with_cluster_dns(served, _policies(tmp_path, DNS_EGRESS)) == (served, None)


def test_the_paths_a_portless_fqdn_rule_and_an_any_protocol_dns_rule_mention(tmp_path: Path) -> None:
    """What `flowcheck init` writes for Cilium's FQDN example: the FQDN on an example port (the rule names
    none), and the DNS rule's port over UDP -- how lookups are asked first, as suites default."""
    from flowcheck.model.engine import Model
    from flowcheck.model.inventory import with_cluster_dns
    from flowcheck.model.mentioned import mentioned_paths

    policies = _policies(tmp_path, DNS_EGRESS)
    topology, _ = with_cluster_dns(_bot_topology(tmp_path), policies)
    found = mentioned_paths(Model(topology, policies))
    paths = {(m.flow.destination.describe(), m.flow.protocol, m.flow.port, m.decision.verdict.value)
             for m in found.paths}
    assert ("api.github.com", "TCP", 443, "allowed") in paths
    assert ("kube-system/kube-dns", "UDP", 53, "allowed") in paths
    assert not any(proto == "TCP" and port == 53 for _, proto, port, _ in paths)
    assert any("names no port; api.github.com is written with 443/TCP as an example" in n for n in found.notes)


def test_an_unknown_fqdn_path_says_its_drop_holds_only_if_the_fqdn_rule_does_not_match(tmp_path: Path) -> None:
    """Without a DNS server the model cannot place the lookup: the isolation reason is conditional, not a fact."""
    from flowcheck.model.engine import Model
    from flowcheck.model.flows import Flow, FqdnEndpoint, WorkloadEndpoint

    model = Model(_bot_topology(tmp_path), _policies(tmp_path, DNS_EGRESS))
    decision = model.decide(Flow(WorkloadEndpoint("default/bot"), FqdnEndpoint("api.github.com"), "TCP", 443))
    assert decision.verdict.value == "unknown"
    assert "the topology has no DNS server" in decision.reasons[0]
    assert decision.reasons[1] == ("CiliumNetworkPolicy default/fqdn egress: no other rule allows TCP/443 to "
                                   "api.github.com (default/bot is isolated for egress), so it is dropped unless a "
                                   "rule above applies")


STAR_WARS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: deathstar, namespace: default}
spec:
  selector: {matchLabels: {org: empire, class: deathstar}}
  template:
    metadata: {labels: {org: empire, class: deathstar}}
    spec: {containers: [{name: d, image: x, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: tiefighter, namespace: default, labels: {org: empire, class: tiefighter}}
spec: {containers: [{name: s, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: xwing, namespace: default, labels: {org: alliance, class: xwing}}
spec: {containers: [{name: s, image: x}]}
"""

RULE1 = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{method: POST, path: /v1/request-landing}]}
"""


def test_an_isolated_workload_gets_one_example_of_a_peer_its_rules_leave_out(tmp_path: Path) -> None:
    """Cilium's Star Wars demo: no rule names the xwing, yet its drop at the deathstar is the demo's point."""
    from flowcheck.model.engine import Model
    from flowcheck.model.mentioned import mentioned_paths

    (tmp_path / "deploy.yaml").write_text(STAR_WARS)
    topology = inventory(read_documents([tmp_path / "deploy.yaml"])).topology
    found = mentioned_paths(Model(topology, _policies(tmp_path, RULE1)))
    paths = [(m.flow.source.describe(), m.flow.destination.describe(), m.flow.port,
              m.flow.http.method if m.flow.http else None, m.verdict.value, m.rule) for m in found.paths]
    assert paths == [
        ("default/tiefighter", "default/deathstar", 80, "POST", "allowed",
         "CiliumNetworkPolicy default/rule1 ingress rule 0"),
        ("default/tiefighter", "default/deathstar", 80, "DELETE", "l7-denied",
         "CiliumNetworkPolicy default/rule1 ingress rule 0"),
        ("default/xwing", "default/deathstar", 80, None, "dropped",
         "CiliumNetworkPolicy default/rule1 isolates default/deathstar for ingress; an example source no rule allows"),
    ]


def test_no_dropped_example_is_written_where_every_peer_is_allowed(tmp_path: Path) -> None:
    from flowcheck.model.engine import Model
    from flowcheck.model.mentioned import mentioned_paths

    (tmp_path / "deploy.yaml").write_text(STAR_WARS)
    topology = inventory(read_documents([tmp_path / "deploy.yaml"])).topology
    everyone = RULE1.replace("fromEndpoints: [{matchLabels: {org: empire}}]", "fromEndpoints: [{}]")
    found = mentioned_paths(Model(topology, _policies(tmp_path, everyone)))
    assert {m.verdict.value for m in found.paths} == {"allowed", "l7-denied"}
    assert not any("isolates" in m.rule for m in found.paths)


def test_a_peer_the_model_cannot_place_gets_a_note_not_silence(tmp_path: Path) -> None:
    from flowcheck.model.engine import Model
    from flowcheck.model.mentioned import mentioned_paths

    services = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: to-db, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: bot}}
  egress:
  - toServices: [{k8sService: {serviceName: db, namespace: default}}]
"""
    found = mentioned_paths(Model(_bot_topology(tmp_path), _policies(tmp_path, services)))
    assert found.notes == ("CiliumNetworkPolicy default/to-db egress rule 0: toServices (Service-based peers) names "
                           "peers the model cannot place, so no path is written for them; state them yourself "
                           "(`live-only: true` where the model answers unknown)",)


def test_an_http_rule_with_an_optional_path_group_gets_an_example_request(tmp_path: Path) -> None:
    """`/cart(/.*)?` -- the common way to allow a path and everything under it -- has an obvious instance."""
    from flowcheck.model.engine import Model
    from flowcheck.model.mentioned import mentioned_paths

    (tmp_path / "deploy.yaml").write_text(STAR_WARS)
    topology = inventory(read_documents([tmp_path / "deploy.yaml"])).topology
    optional = RULE1.replace("{method: POST, path: /v1/request-landing}", "{method: GET, path: '/v1(/.*)?'}")
    found = mentioned_paths(Model(topology, _policies(tmp_path, optional)))
    requests = {(m.flow.http.method, m.flow.http.path, m.verdict.value) for m in found.paths if m.flow.http}
    assert ("GET", "/v1", "allowed") in requests
    assert not found.notes
