"""How an executor starts the probe agent: ``agent_argv``, the command every executor runs.

``python3 agent.py`` works (docs/contracts.md, "The probe agent") but compiles ``agent.py`` on every
run: Python never caches the bytecode of a script it is given by path, and probe pods set
``PYTHONDONTWRITEBYTECODE`` on a read-only file system anyway. Compiling is about half of the agent's
start-up CPU (~14 ms of ~27 ms measured in the netns lab), and start-up is paid once per source pod per
batch, all at once, when every source is probed concurrently -- on a kind cluster, all on the same few
host cores.

So executors import the agent as a module instead, with the bytecode cache redirected
(``sys.pycache_prefix``) to a writable directory of the pod's own (its ``/tmp``): the first run in a pod
compiles and writes the cache, every later run loads it. Where nothing can be written, the import
compiles as ``python3 agent.py`` would, and the agent runs the same. The cache is checked against the
source's size and modification time, as every ``__pycache__`` is. (The prefix applies to every module
imported after it is set, so the cache also holds the two or three small pure-Python standard modules the
agent imports -- compiled on the first run too, loaded from there afterwards.)

``-S`` skips ``site``: the agent is standard library only, and a stock interpreter's ``site`` start-up
(site-packages, ``.pth`` files) is cost without use. ``sys.path[0]`` (the current directory under ``-c``)
becomes the agent's directory, as for ``python3 agent.py``.
"""

from __future__ import annotations

import posixpath

POD_PYCACHE_DIR = "/tmp/flowcheck-pycache"  # probe pods mount an emptyDir at /tmp (cluster.workloads)


def agent_argv(agent_path: str, *, python: str = "python3", pycache_dir: str = POD_PYCACHE_DIR) -> list[str]:
    """The argv that runs the agent at ``agent_path`` (a POSIX path where it runs) from cached bytecode."""
    directory, filename = posixpath.split(agent_path)
    module, dot_py = posixpath.splitext(filename)
    if not directory or dot_py != ".py" or not module.isidentifier():
        raise ValueError(f"not a path to an importable agent .py file: {agent_path!r}")
    code = (f"import sys;sys.dont_write_bytecode=False;sys.pycache_prefix={pycache_dir!r};"
            f"sys.path[0]={directory!r};import {module} as agent;agent._exit(agent.main())")
    return [python, "-S", "-c", code]
