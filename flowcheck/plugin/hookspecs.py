"""The hook through which a conftest (or another plugin) plugs in its own live back end."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flowcheck.harness.backends import BackendProvider


@pytest.hookspec(firstresult=True)
def pytest_flowcheck_backend(config: pytest.Config) -> BackendProvider | None:
    """Return the provider of the live back end for this run, or None for flowcheck's default.

    flowcheck's default is a kind (or explicitly allowed existing) cluster according to
    ``--flowcheck-cluster``. flowcheck's own tests use this hook to run the whole live path against fakes
    and against the network-namespace lab.
    """
