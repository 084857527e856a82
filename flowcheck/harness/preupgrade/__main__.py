"""``python -m flowcheck.harness.preupgrade TARGET_VERSION [...]``: what scripts/pre-upgrade-check runs."""

from __future__ import annotations

from flowcheck.harness.preupgrade.command import main

if __name__ == "__main__":
    raise SystemExit(main())
