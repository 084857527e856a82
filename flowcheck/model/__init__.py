"""The policy model: parse policies and topologies, predict verdicts, explain them.

Pure: no network, no processes, no cluster; the only I/O is reading the files it is given.

Modules, in the order data flows through them:

* ``documents`` / ``validation`` -- read manifests (files, directories, List, kustomization) and
  check them against the Kubernetes and Cilium schemas;
* ``topology`` (design §2), ``flows`` (design §3) -- the scenario and the flows to judge;
* ``selectors``, ``identity`` -- label selectors and the identities Cilium synthesises;
* ``policy`` -- the typed policy vocabulary; ``parse_knp`` / ``parse_cilium`` build it and
  ``policies.load_policies`` loads a ``PolicySet`` from paths (``parse_policies`` from documents
  already read);
* ``engine`` -- ``Model.decide(flow) -> Decision`` (cilium-semantics §7);
* ``matrix`` (``plan``), ``explain``, ``render`` -- what ``flowcheck plan``/``explain`` print.
"""
