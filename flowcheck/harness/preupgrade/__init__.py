"""Pre-upgrade validation: does anything a policy author meant change when Cilium is upgraded?

    flowcheck pre-upgrade 1.20.0                                  # on flowcheck's kind cluster
    flowcheck pre-upgrade 1.20.0 --context staging --allow-context staging --values staging-values.yaml
    scripts/pre-upgrade-check 1.20.0 -- -k dns                     # extra pytest arguments after --

The check is a fixed sequence of named steps. Each prints one progress line when it starts; a
failure names the step, says what went wrong and what to look at, and stops the sequence:

1. **context guard** -- on kind (the default) the context is ``kind-<cluster name>`` of a kind
   cluster ``kind get clusters`` lists; an existing (staging) cluster is used only when it is named
   twice, ``--context C --allow-context C``. Anything else is refused (exit 2) before a process runs.
2. **bring-up** -- on kind, a missing cluster is created with the pinned Cilium by ``python -m
   flowcheck cluster up`` (the same code as ``scripts/cluster-up``).
3. **Cilium before** -- ``cilium status --wait`` then ``-o json``: which version runs (the agents'
   image tag). On kind it must be the pinned one (``manifests/cilium/VERSION``); the target must be
   newer and at most one minor version ahead (the upgrade guide tests consecutive minors only).
   The cluster name the agents run with is read from ``kube-system/cilium-config`` (key
   ``cluster-name``); a values file naming the cluster otherwise is refused (exit 2).
4. **suites before** -- ``pytest suites/`` live (the suites include ``cilium connectivity test``)
   into ``DIR/before``. A red start stops here: a pre-upgrade check needs a green starting point.
5. **baseline before** -- ``DIR/before/matrix.json`` recorded as ``DIR/baseline-before.json``.
6. **preflight** -- the upgrade guide's required pre-flight check: a ``cilium-preflight`` Helm
   release with ``preflight.enabled=true`` for the target version. Its DaemonSet pre-pulls the new
   image on every node; its Deployment runs the CNP validator against every CiliumNetworkPolicy and
   CiliumClusterwideNetworkPolicy. Ready when the DaemonSet has as many ready pods as the ``cilium``
   DaemonSet desires and the Deployment is 1/1 (read from the Kubernetes API). If it is not ready in
   time, the validator's log is quoted. The release is always uninstalled afterwards, also on failure.
7. **upgrade** -- ``cilium upgrade`` to the target with ``--reset-values`` and the reviewed values
   file, ``upgradeCompatibility`` set to the minor version that ran before, and ``cluster.name``
   set to the name read in step 3 -- ``--reset-values`` would otherwise bring back the chart's
   ``default`` and re-create every identity mid-check (see ``upgrade_argv``).
8. **rollout** -- ``cilium status --wait``, then ``cilium status -o json`` polled until every agent
   runs the target image and the ``cilium`` DaemonSet is Desired == Ready == Available. The guide
   says traffic through the L7 proxy is disrupted while agents roll, so no L7 check may run before.
9. **suites after** -- the same suites into ``DIR/after``.
10. **compare** -- ``DIR/baseline-after.json`` compared with the baseline before; every flow whose
    verdict changed, appeared or disappeared is printed.

Exit codes: 0 nothing changed; 1 a change, a failed suite run or a failed step; 2 bad input or a
refused context. After a failure past step 7 the cluster stays on the target version.

Everything that runs a process goes through one injected ``ProcessRunner``, the Kubernetes API
through an injected factory, time through injected ``clock``/``sleep`` -- tests run the whole
sequence against fakes. Nothing here has been run against a real cluster. helm's output is never
parsed (only its exit codes are used); the CNP validator's log is quoted, filtered to the lines
that mention an invalid policy or an error, because its exact format is not confirmed beyond the
upgrade guide's "Found invalid CiliumNetworkPolicy".

The package, one module per concern: ``versions`` (which Cilium runs, whether a rollout is done),
``values`` (the Helm values file), ``preflight`` (the preflight release's readiness and the CNP
validator's log), ``options`` (what to check, the defaults), ``check`` (``PreUpgradeCheck``, the
steps in order). The command line (``flowcheck pre-upgrade``, which ``scripts/pre-upgrade-check``
runs) is ``flowcheck.cli.preupgrade``: ``PreUpgradeCheck.run()`` raises ``StepFailed``
(``StepRejected`` for bad input) and the command line maps it to the exit code. Polling with
injected time (``wait_until``), version parsing and the pinned version come from the cluster layer
(``flowcheck.cluster.polling``, ``flowcheck.cluster.versions``), shared with its own waits. The
names other code imports are re-exported here.

An interrupted run (Ctrl-C, or a step's timeout) gives its ``pytest suites/`` children ten minutes
to tear down before they are killed (``options.SUITES_INTERRUPT_GRACE_S``): killed early, they would
leave the repository's policies applied on the cluster.
"""

from __future__ import annotations

# Not part of this package's API: a test patches `preupgrade.SubprocessRunner.run` (the class the check
# instantiates) to prove that no process runs before the context guard.
from flowcheck.cluster.process import SubprocessRunner as SubprocessRunner
from flowcheck.harness.preupgrade.check import STEPS, PreUpgradeCheck, StepFailed, StepRejected
from flowcheck.harness.preupgrade.options import PreUpgradeOptions, PreUpgradeTimeouts, default_report_dir
from flowcheck.harness.preupgrade.preflight import PreflightState
from flowcheck.harness.preupgrade.values import read_values
from flowcheck.harness.preupgrade.versions import CiliumVersion, image_tag, rollout_pending, running_version

__all__ = [
    "STEPS",
    "CiliumVersion",
    "PreUpgradeCheck",
    "PreUpgradeOptions",
    "PreUpgradeTimeouts",
    "PreflightState",
    "StepFailed",
    "StepRejected",
    "default_report_dir",
    "image_tag",
    "read_values",
    "rollout_pending",
    "running_version",
]
