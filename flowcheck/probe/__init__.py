"""What runs inside probe pods (``agent.py``, ``server.py``: standard library only, Python >= 3.9)
and the library-side classification of the agent's raw results into verdicts (``classify.py``)."""
