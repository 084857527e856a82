"""Errors under one root, each carrying the facts a caller acts on."""

from __future__ import annotations

import pytest

from flowcheck.cluster.process import run_checked
from flowcheck.errors import ClusterError, CommandFailed, ContextRefused, FlowcheckError, InputError
from flowcheck.harness.expectations import ExpectationError
from flowcheck.probe.executor import CompletedExec


def test_a_mistake_in_a_suite_is_bad_input_under_the_root() -> None:
    assert issubclass(ExpectationError, InputError) and issubclass(InputError, FlowcheckError)


def test_a_refused_context_is_about_a_cluster_and_the_users_input_to_fix() -> None:
    refused = ContextRefused("prod", "not a kind cluster")
    assert isinstance(refused, ClusterError) and isinstance(refused, InputError)
    assert refused.context == "prod"


class _Exits:
    def __init__(self, returncode: int) -> None:
        self.returncode = returncode

    def run(self, argv: object, **_kwargs: object) -> CompletedExec:
        return CompletedExec(self.returncode, "", "line 1\nno such cluster\n")


def test_a_failed_command_carries_its_argv_exit_code_and_output() -> None:
    with pytest.raises(CommandFailed) as caught:
        run_checked(_Exits(3), ["kind", "delete", "cluster"], what="deleting the cluster")
    failed = caught.value
    assert (failed.argv, failed.returncode, failed.action) == (("kind", "delete", "cluster"), 3, "deleting the cluster")
    assert failed.stderr.endswith("no such cluster\n")
    assert str(failed).startswith("deleting the cluster failed (exit 3: `kind delete cluster`)")
    assert run_checked(_Exits(0), ["kind"], what="x").returncode == 0
