"""The policy model: parse policies and topologies, predict verdicts, explain them.

Pure: no network, no processes, no cluster; the only I/O is reading the files it is given.
"""
