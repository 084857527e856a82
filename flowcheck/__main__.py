"""``python -m flowcheck ...``: the ``flowcheck`` command, for scripts that run a given interpreter."""

from __future__ import annotations

from flowcheck.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
