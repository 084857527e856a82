"""Everything that touches a real cluster: kind, the cilium CLI, the Kubernetes API, Hubble.

Kept thin around the pure model and the probe agent; one place runs processes, so tests swap it
for a fake. No live cluster runs where this project is developed: this layer is tested with
recorded real outputs and fakes at the process/API boundary.
"""
