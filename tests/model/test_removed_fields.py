"""Fields Cilium removed get a message saying so and what to write instead, exit 2 -- not "unknown field".

The Cilium 1.19 upgrade notes (Documentation/operations/upgrade.rst, "1.19 Upgrade Notes"): "The
previously deprecated FromRequires and ToRequires fields of the CiliumNetworkPolicy and
CiliumClusterwideNetworkPolicy CRDs have been removed" (deprecated since 1.17: layer3.rst). The notes
name no replacement field; Cilium used to append the requirements to every fromEndpoints/toEndpoints
selector of the rules selecting the same endpoints (pkg/policy/api/ingress.go
GetSourceEndpointSelectorsWithRequirements), so that is what the message tells a user to write.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcheck.cli import main
from flowcheck.errors import PolicyError
from tests.conftest import REPO_ROOT
from tests.model.helpers import policies

TOPOLOGY = str(REPO_ROOT / "fixtures" / "topology.yaml")

# examples/policies/l3/requires/requires.yaml, as upstream ships it (its top-level `description` is not
# a CRD field either, so `validate` reports that too).
REQUIRES_YAML = '''apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
description: "For endpoints with env=prod, only allow if source also has label env=prod"
metadata:
  name: "requires-rule"
specs:
  - endpointSelector:
      matchLabels:
        env: prod
    ingress:
    - fromRequires:
      - matchLabels:
          env: prod
'''


def _policy(kind: str, section: str, key: str) -> str:
    namespace = "\n  namespace: default" if kind == "CiliumNetworkPolicy" else ""
    return (f"apiVersion: cilium.io/v2\nkind: {kind}\nmetadata:\n  name: p{namespace}\n"
            f"spec:\n  endpointSelector: {{matchLabels: {{app: web}}}}\n"
            f"  {section}:\n  - {key}: [{{matchLabels: {{env: prod}}}}]\n")


CASES = [
    ("CiliumNetworkPolicy", "ingress", "fromRequires", "fromEndpoints selectors of every ingress rule"),
    ("CiliumNetworkPolicy", "ingressDeny", "fromRequires", "fromEndpoints selectors of every ingress rule"),
    ("CiliumNetworkPolicy", "egress", "toRequires", "toEndpoints selectors of every egress rule"),
    ("CiliumClusterwideNetworkPolicy", "egressDeny", "toRequires", "toEndpoints selectors of every egress rule"),
]


def _expected(path: Path, section: str, key: str) -> str:
    return (f"{path} (document 0), field spec.{section}[0].{key}: {key} was removed in Cilium 1.19 (deprecated "
            "since 1.17) and has no replacement field: add its label requirements to the ")


@pytest.mark.parametrize(("kind", "section", "key", "instead"), CASES)
def test_validate_says_the_field_was_removed_and_what_replaces_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, section: str, key: str, instead: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_policy(kind, section, key))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert _expected(path, section, key) + instead in err
    assert "unknown field" not in err


@pytest.mark.parametrize(("kind", "section", "key", "instead"), CASES)
def test_plan_and_explain_say_the_field_was_removed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, section: str, key: str, instead: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_policy(kind, section, key))
    for command in (["plan"], ["explain", "--from", "default/web", "--to", "default/my-api", "--port", "8080"]):
        assert main([*command, "--topology", TOPOLOGY, "--policies", str(path)]) == 2
        err = capsys.readouterr().err
        assert _expected(path, section, key) + instead in err, (command, err)


def test_upstream_requires_example_is_reported_with_the_removal(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """examples/policies/l3/requires/requires.yaml: every problem is listed, the removal among them."""
    path = tmp_path / "requires.yaml"
    path.write_text(REQUIRES_YAML)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path} (document 0), field description: unknown field 'description'" in err
    assert (f"{path} (document 0), field specs[0].ingress[0].fromRequires: fromRequires was removed in Cilium 1.19"
            in err)


def test_the_parser_gives_the_same_message_without_schema_validation() -> None:
    """Callers that skip the schema check (validate=False) still get the removal, not a crash or a guess."""
    with pytest.raises(PolicyError) as caught:
        policies(_policy("CiliumNetworkPolicy", "ingress", "fromRequires"), validate=False)
    assert caught.value.field == "spec.ingress[0].fromRequires"
    assert "fromRequires was removed in Cilium 1.19" in caught.value.message
    assert "fromEndpoints selectors of every ingress rule" in caught.value.message


def test_a_networkpolicy_key_of_that_name_stays_an_unknown_field(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The removal message is Cilium's: a NetworkPolicy never had the field."""
    path = tmp_path / "knp.yaml"
    path.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: default}\n"
                    "spec:\n  podSelector: {}\n  ingress: [{fromRequires: []}]\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "fromRequires" in err and "removed in Cilium" not in err
