"""``flowcheck init MANIFESTS... --policies P --out DIR``: a topology and a starter intent file from a repository.

A repository's manifests already say what the topology needs -- every workload's labels, ports and
service account (``flowcheck.model.inventory``) -- and its policies say which paths matter
(``flowcheck.model.mentioned``). ``init`` writes both files for a repository flowcheck has never
seen: ``DIR/topology.yaml`` and ``DIR/intent.flowcheck.yaml``, the model's current verdict for every
path the policies mention, each entry marked ``review:`` -- captured, not yet confirmed as intent.
It refuses to overwrite either file without ``--force``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flowcheck.cli.common import print_notes, report_warnings, say
from flowcheck.cli.exit_codes import ExitCode
from flowcheck.errors import InputError
from flowcheck.manifests.documents import read_documents, rendering_notes
from flowcheck.model.engine import Model
from flowcheck.model.flows import CidrEndpoint, Endpoint, EntityEndpoint, FqdnEndpoint, WorkloadEndpoint
from flowcheck.model.inventory import WORKLOAD_KINDS, inventory, topology_yaml, with_cluster_dns
from flowcheck.model.mentioned import Mentioned, mentioned_paths
from flowcheck.model.policies import load_policies
from flowcheck.model.semantics import SEMANTICS
from flowcheck.model.unmatched import unmatched

if TYPE_CHECKING:
    from flowcheck.harness.intent_file import IntentEntry
from flowcheck.vocabulary import DNS_PORT, counted

TOPOLOGY_FILE = "topology.yaml"
INTENT_FILE = "intent.flowcheck.yaml"

TOPOLOGY_HEADER = """\
# The workloads of {sources}, as `flowcheck init` read them: pod-template labels, container ports
# (and ports a Service sends to), service accounts; namespaces with their labels. Workloads in
# kube-system are `existing`: the cluster runs them, flowcheck deploys no stand-in for them.
# Format: docs/contracts.md, "Topology file". Edit freely; `flowcheck init --force` writes it again.
"""

INTENT_HEADER = """\
Intended paths: each entry is a test (pytest collects *.flowcheck.yaml files), checked against the
policy model offline and probed on a cluster when one is attached. Format: docs/contracts.md,
"Intent files".

`flowcheck init` captured these from the model: every path the policies in {policies} mention, with
the verdict the model gives it TODAY. That is not intent yet. Review each entry: keep it if it is
what you mean, change its verdict if the policy is wrong (the test then fails until the policy is
fixed), and delete its `review:` line. `--flowcheck-strict` fails on entries still marked.
Entries marked `live-only: true` are paths the model cannot decide: their verdict is what the rule
states, and only a cluster checks them.
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "init",
        help="write a topology and a starter intent file from a repository's manifests and policies",
        description=f"Read the workloads ({', '.join(WORKLOAD_KINDS)}, and Services for the ports they send to) "
                    "from MANIFESTS (files, directories, multi-document YAML, rendered Helm output, kustomizations) "
                    f"and write DIR/{TOPOLOGY_FILE}; decide every path the policies mention with the model and write "
                    f"the verdicts to DIR/{INTENT_FILE}, each marked for review.",
    )
    parser.add_argument("manifests", nargs="+", metavar="MANIFESTS", help="workload manifests (files or directories)")
    parser.add_argument("--policies", required=True, action="extend", nargs="+", metavar="PATH",
                        help="policy files or directories (as for plan)")
    parser.add_argument("--out", default="flowcheck", metavar="DIR", help="where to write (default ./flowcheck)")
    parser.add_argument("--force", action="store_true", help="overwrite files already there")
    parser.add_argument("--semantics", choices=SEMANTICS, default="cilium",
                        help="cilium (default): what Cilium does; kubernetes: the NetworkPolicy specification")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise InputError(f"--out {out}: {blocking} is a file; --out names a directory to write {TOPOLOGY_FILE} and "
                         f"{INTENT_FILE} in")
    targets = [out / TOPOLOGY_FILE, out / INTENT_FILE]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not args.force:
        raise InputError(f"{existing[0]} exists: `flowcheck init` does not overwrite what may hold your edits "
                         "(--force writes it anyway)")
    documents = list(read_documents(args.manifests))
    found = inventory(documents)
    print_notes([*rendering_notes(documents), *found.notes])
    topology = found.topology
    if not topology.workloads:
        raise InputError(f"{', '.join(args.manifests)}: no workload found (looked for {', '.join(WORKLOAD_KINDS)})")
    policies = load_policies(args.policies)
    print_notes(policies.notes)
    topology, dns_note = with_cluster_dns(topology, policies)
    print_notes([dns_note] if dns_note else [])
    model = Model(topology, policies, args.semantics)
    report_warnings(args, unmatched(topology, policies))
    mentioned = mentioned_paths(model)
    print_notes(mentioned.notes)
    entries = [_entry(m) for m in mentioned.paths]
    out.mkdir(parents=True, exist_ok=True)
    header = TOPOLOGY_HEADER.format(sources=", ".join(args.manifests))
    targets[0].write_text(header + yaml.safe_dump(topology_yaml(topology), sort_keys=False, width=120),
                          encoding="utf-8")
    say(f"wrote {targets[0]}: {counted(len(topology.namespaces), 'namespace')}, "
        f"{counted(len(topology.workloads), 'workload')}")
    from flowcheck.harness.intent_file import render_intent  # the harness is loaded by the commands using it

    targets[1].write_text(render_intent(entries, INTENT_HEADER.format(policies=", ".join(args.policies))),
                          encoding="utf-8")
    live_only = sum(e.live_only for e in entries)
    say(f"wrote {targets[1]}: {counted(len(entries), 'path')} the policies mention ({live_only} live-only), "
        "each marked `review:` -- confirm each states what you mean")
    say(f"next: pytest {out} --flowcheck-policies {' --flowcheck-policies '.join(args.policies)} "
        f"--flowcheck-topology {targets[0]}")
    return ExitCode.OK


def _entry(mentioned: Mentioned) -> IntentEntry:
    flow = mentioned.flow
    default_protocol = "UDP" if flow.dns is not None else "TCP"
    http = headers = host = None
    if flow.http is not None:
        http = f"{flow.http.method} {flow.http.path}"
        headers = dict(flow.http.headers) or None
        host = flow.http.host
    why = f"captured from the model ({mentioned.rule})"
    if mentioned.live_only:
        reason = mentioned.decision.reasons[0] if mentioned.decision.reasons else "no reason given"
        why = f"the model cannot decide it ({reason}); the verdict is what {mentioned.rule} states"
    from flowcheck.harness.intent_file import new_entry

    return new_entry(_text(flow.source), _text(flow.destination), mentioned.verdict,
                     port=None if flow.dns is not None and flow.port == DNS_PORT else flow.port,
                     protocol=None if flow.protocol == default_protocol else flow.protocol, http=http,
                     headers=headers, host=host, dns=flow.dns.query if flow.dns is not None else None,
                     live_only=mentioned.live_only, review=why)


def _text(endpoint: Endpoint) -> str:
    """An end as an intent file writes it (``flowcheck.model.flows.endpoint_from_text`` reads it back)."""
    if isinstance(endpoint, WorkloadEndpoint):
        return endpoint.ref
    if isinstance(endpoint, FqdnEndpoint):
        return endpoint.fqdn if "." in endpoint.fqdn else f"fqdn:{endpoint.fqdn}"
    if isinstance(endpoint, CidrEndpoint):
        return endpoint.network
    assert isinstance(endpoint, EntityEndpoint)
    return endpoint.entity.value + (f"@{endpoint.ip}" if endpoint.ip else "")
