"""The policy model: parse policies and topologies, predict verdicts, explain them.

Pure: no network, no processes, no cluster; the only I/O is reading the files it is given.

Modules, in the order data flows through them:

Manifests are read and schema-checked by ``flowcheck.manifests`` (a base layer the cluster uses too).

* ``topology``, ``flows`` -- the scenario and the flows to judge (docs/contracts.md, "Topology
  file" and "Flow file");
* ``selectors``, ``identity`` -- label selectors, the identities Cilium synthesises and allocates;
* ``policy`` -- the typed policy vocabulary; ``parse_knp`` / ``parse_cilium`` build it and
  ``policies.load_policies`` loads a ``PolicySet`` from paths (``parse_policies`` from documents
  already read);
* ``engine`` -- ``Model.decide(flow) -> Decision``, the facade over ``peer_classes``,
  ``port_match``, ``side_eval``, ``side_verdict``, ``l7`` and ``fqdn`` (docs/semantics.md);
* ``decision`` -- a decision as data; ``reasons`` -- its sentences;
* ``cidr`` -- flows to or from a whole external block, decided only where every address agrees;
* ``matrix`` (``decide_matrix``, ``iter_matrix``), ``identity_plan`` (``iter_identity_plan``: the plan
  per identity pair), ``explain``, ``render`` -- what ``flowcheck plan``/``explain`` print;
* ``unmatched`` -- warnings for what in the policies matches nothing in the topology;
* ``inventory`` (a topology from workload manifests) and ``mentioned`` (the paths the policies
  mention, decided) -- what ``flowcheck init`` writes.
"""
