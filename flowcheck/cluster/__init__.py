"""Everything that touches a real cluster: kind, the cilium CLI, the Kubernetes API, Hubble.

Kept thin around the pure model and the probe agent; one place runs processes, so tests swap it
for a fake. No live cluster runs where this project is developed: this layer follows the tools'
documented interfaces and the ``kubernetes`` client's own API, and is tested with recorded
real-shaped outputs (``tests/data/cluster/``, each file's provenance in its README) and fakes at
the process/API boundary -- never verified on a cluster here.

Modules, by what they do:

* ``session``     -- ``LiveCluster``: bring-up, deploy, apply policies, probe, evidence, teardown;
                     what the pytest plugin and ``flowcheck cluster up|down`` use.
* ``process``     -- the one place local processes run (``ProcessRunner``).
* ``tools``       -- finding kind/cilium/hubble/docker in ``.bin/`` or on PATH (``scripts/install-tools``).
* ``kind``        -- the kind CLI; ``cilium`` -- install/upgrade, ``status --wait``, connectivity test + JUnit.
* ``kube``        -- API clients (one per thread), namespaces, applying and removing policies, and
                     client exceptions turned into ``api_errors`` (typed by status; unreachable).
* ``podexec``     -- ``exec_in_pod``: exec with stdin, exit code from the error channel.
* ``workloads``   -- probe pod specs, the probe-files ConfigMap, readiness, existing pods.
* ``deployed``    -- ``DeployedTopology``: pods, IPs, nodes; part of ``LiveCluster.state()``.
* ``executor``    -- ``PodExecutor``, the ``ProbeExecutor`` for pods.
* ``realization`` -- waiting for the Cilium agents' policy revision after applying.
* ``polling``     -- ``wait_until``: deadline polling with injected time (also the pre-upgrade check's).
* ``versions``    -- ``CiliumVersion``, the pinned version, image tags (also the pre-upgrade check's).
* ``hubble``      -- collecting, parsing and matching Hubble flows; one-line summaries.
* ``guard``       -- the kube-context guard (``ContextRefused``).
* ``cleanup``     -- leftovers found by the ``flowcheck.io/run`` label (``flowcheck cleanup``).
"""
