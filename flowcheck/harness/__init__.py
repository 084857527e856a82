"""The harness: one expectation, checked against the model and the live cluster.

``expectations`` turns what a suite declares into model flows and probe specs; ``intent_file``
reads the same declarations from YAML intent files (and writes them, for ``flowcheck init``); ``live`` probes
them (batched per source, retried only while they disagree); ``checker`` is the ``flowcheck_paths`` object
suites use; ``run_state`` makes expensive set-up happen once per run across pytest-xdist workers;
``backends`` is where the live cluster (or, in tests, the network-namespace lab) plugs in.
It composes the lower layers and is used by the pytest plugin and the CLI only.
"""
