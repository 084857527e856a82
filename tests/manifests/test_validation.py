"""Offline validation of policy manifests: what is accepted, and how a broken file is reported."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kubernetes_validate_utils
import pytest
import yaml

from flowcheck.manifests import validation
from flowcheck.manifests.documents import SourceDocument, read_documents
from flowcheck.manifests.validation import KUBERNETES_SCHEMA_VERSION, validate_document, validate_paths
from flowcheck.manifests.validation import _to_policy_error as to_policy_error
from tests.conftest import POLICIES_DIR, REPO_ROOT

CNP = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-get-only, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: my-api}}
  ingress:
    - toPorts:
        - ports: [{port: "8080", protocol: TCP}]
          rules: {http: [{method: GET}]}
"""


def _write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_repository_policies_are_valid() -> None:
    report = validate_paths([POLICIES_DIR])
    assert report.ok, [str(e) for e in report.errors]
    assert len(report.checked) == 4


def test_unknown_field_in_cnp_names_file_document_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "---\n" + CNP.replace("rules:", "rulez:"))
    [error] = validate_paths([path]).errors
    assert error.path == str(path)
    assert error.document == 0
    assert error.field == "spec.ingress[0].toPorts[0].rulez"
    assert "unknown field 'rulez'" in str(error)


def test_cnp_without_spec_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\n")
    [error] = validate_paths([path]).errors
    assert error.field == "spec"
    assert "needs `spec`" in error.message


def test_null_fields_of_a_cnp_are_absent_not_errors(tmp_path: Path) -> None:
    # The API server prunes nulls of non-nullable fields in a structural CRD schema before validating:
    # `fromEndpoints:` with no value is valid and means the field is absent.
    text = CNP.replace("    - toPorts:", "    - fromEndpoints:\n      toPorts:") + "  egress:\n  description: null\n"
    assert validate_paths([_write(tmp_path, text)]).ok
    doc = yaml.safe_load(text)
    doc["spec"], doc["specs"] = None, [doc["spec"]]
    assert validate_paths([_write(tmp_path, yaml.safe_dump(doc), "specs.yaml")]).ok
    [error] = validate_paths([_write(tmp_path, text.replace("- fromEndpoints:", "- fromEndpoints: [null]"),
                                     "item.yaml")]).errors  # a null list item is not pruned
    assert error.field == "spec.ingress[0].fromEndpoints[0]"


def test_cnp_with_null_spec_and_no_specs_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec:\n")
    [error] = validate_paths([path]).errors
    assert error.field == "spec"
    assert "needs `spec`" in error.message


def test_cnp_with_neither_endpoint_nor_node_selector_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, CNP.replace("  endpointSelector: {matchLabels: {app: my-api}}\n", ""))
    errors = validate_paths([path]).errors
    assert [(e.field, e.message) for e in errors] == [
        ("spec", "needs exactly one of: endpointSelector, nodeSelector")]


def test_unknown_entity_is_rejected_as_the_crd_enum_does(tmp_path: Path) -> None:
    # world-ipv4 exists in Cilium's Go code but not in the CRD enum: the API server rejects it.
    path = _write(tmp_path, CNP.replace("- toPorts:", "- fromEntities: [world-ipv4]\n      toPorts:"))
    [error] = validate_paths([path]).errors
    assert error.field == "spec.ingress[0].fromEntities[0]"
    assert "'world-ipv4' is not one of" in error.message


def test_wrong_cilium_api_version_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, CNP.replace("cilium.io/v2", "cilium.io/v1"))
    [error] = validate_paths([path]).errors
    assert error.field == "apiVersion"


def test_networkpolicy_unknown_field_is_reported_by_kubernetes_schema(tmp_path: Path) -> None:
    text = (POLICIES_DIR / "default-deny-ingress.yaml").read_text().replace("policyTypes:", "policyType:")
    [error] = validate_paths([_write(tmp_path, text)]).errors
    assert error.field == "spec.policyType"
    assert "unknown field" in error.message


def test_networkpolicy_wrong_type_names_the_field(tmp_path: Path) -> None:
    text = (POLICIES_DIR / "allow-dns-egress.yaml").read_text().replace("port: 53", "port: [53]")
    [error] = validate_paths([_write(tmp_path, text)]).errors
    assert error.field == "spec.egress[0].ports[0].port"


def test_bad_yaml_names_line_and_document(tmp_path: Path) -> None:
    path = _write(tmp_path, CNP + "---\nkind: [unclosed, x: y\nmetadata: {}\n")
    [error] = validate_paths([path]).errors
    assert error.document == 1
    assert error.message.startswith("invalid YAML at line 12, column 9")


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    broken = CNP.replace("rules:", "rulez:").replace("protocol: TCP", "protocol: ICMP")
    errors = validate_paths([_write(tmp_path, broken)]).errors
    assert {e.field for e in errors} == {"spec.ingress[0].toPorts[0].rulez",
                                         "spec.ingress[0].toPorts[0].ports[0].protocol"}


def test_list_items_are_validated_with_their_index(tmp_path: Path) -> None:
    item = yaml.safe_load(CNP)
    bad = json.loads(json.dumps(item))
    bad["spec"]["ingress"][0]["toPorts"][0]["ports"][0]["port"] = "not a port!"
    bad["metadata"]["name"] = "another"  # one name twice would be an error of its own
    path = _write(tmp_path, yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [item, bad]}))
    [error] = validate_paths([path]).errors
    assert error.field == "items[1].spec.ingress[0].toPorts[0].ports[0].port"


def test_unknown_kinds_are_noted_not_failed(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    report = validate_paths([path])
    assert report.ok
    assert "Widget example.com/v1 has no bundled schema; not validated" in report.notes[0]


def test_kustomization_resources_and_namespace_are_applied(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    _write(tmp_path / "base", CNP.replace("namespace: default", "namespace: other"), "cnp.yaml")
    _write(tmp_path / "base", "resources: [cnp.yaml]\n", "kustomization.yaml")
    _write(tmp_path, "namespace: team-a\nresources: [base]\n", "kustomization.yaml")
    [doc] = read_documents([tmp_path])
    assert doc.body["metadata"]["namespace"] == "team-a"


def test_kustomize_patches_are_refused_not_ignored(tmp_path: Path) -> None:
    _write(tmp_path, CNP, "cnp.yaml")
    _write(tmp_path, "resources: [cnp.yaml]\npatches: [{path: p.yaml}]\n", "kustomization.yaml")
    [error] = validate_paths([tmp_path]).errors
    assert error.field == "patches"
    assert "kustomize build" in error.message


def test_missing_kustomization_resource_names_the_entry(tmp_path: Path) -> None:
    _write(tmp_path, "resources: [gone.yaml]\n", "kustomization.yaml")
    [error] = validate_paths([tmp_path]).errors
    assert error.field == "resources[0]"
    assert "does not exist" in error.message


@pytest.mark.parametrize(
    ("breakage", "field"),
    [
        (lambda text: text.replace("rules:", "rulez:"), "spec.ingress[0].toPorts[0].rulez"),
        (lambda text: text.split("spec:")[0], "spec"),
        (lambda text: text.replace("app: my-api", "app: [my-api"), "line"),
    ],
    ids=["unknown-field", "missing-spec", "bad-yaml"],
)
def test_suite_fails_on_a_broken_copy_naming_file_and_field(
    pytester: pytest.Pytester, policies_copy: Path, breakage, field: str  # type: ignore[no-untyped-def]
) -> None:
    """Acceptance (issue 2): a malformed policy makes `pytest suites/` fail with file and field."""
    target = policies_copy / "allow-get-only.yaml"
    target.write_text(breakage(target.read_text()))
    result = pytester.runpytest_subprocess(
        str(REPO_ROOT / "suites" / "test_manifests.py"), "--rootdir", str(REPO_ROOT),
        "--flowcheck-policies", str(policies_copy), "-p", "no:cacheprovider", "--flowcheck-cluster=none",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, result.stdout.str()
    output = result.stdout.str()
    assert "FAILED" in output
    assert str(target) in output
    assert field in output


def test_absurdly_nested_yaml_is_bad_input_not_a_crash(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    [error] = validate_paths([path]).errors
    if yaml.__with_libyaml__:  # libyaml refuses more than 1000 levels itself, saying where
        assert error.message == "invalid YAML at line 1, column 1003: exceeded maximum nesting depth"
    else:  # the pure-Python loader recurses until Python stops it
        assert error.message == "the YAML is nested too deeply to be a Kubernetes object"


@pytest.mark.parametrize(("extra", "field"), [("1: 2\n", "1"), ("1: 2\nzzz: 3\n", "1")])
def test_non_string_keys_are_unknown_fields_not_a_crash(tmp_path: Path, extra: str, field: str) -> None:
    """YAML allows `1: 2`; a CNP with it at the top level used to crash the validator (exit 1)."""
    path = _write(tmp_path, CNP.replace("spec:\n", extra + "spec:\n", 1))
    [error] = validate_paths([path]).errors
    assert error.field == field
    assert error.message.startswith("unknown field 1 ")


@pytest.mark.parametrize(("kind", "api_version", "field", "message"), [
    ("a/b", "v1", "kind", "'a/b' is not a Kubernetes kind"),
    ("Net\x00work", "v1", "kind", "'Net\\x00work' is not a Kubernetes kind"),
    ("K" * 300, "v1", "kind", "'KKKK"),
    ("Network Policy", "networking.k8s.io/v1", "kind", "'Network Policy' is not a Kubernetes kind"),
    ("Foo", "a/b/c", "apiVersion", "'a/b/c' is not a Kubernetes apiVersion"),
    ("Foo", "../../v1", "apiVersion", "is not a Kubernetes apiVersion"),
    ("Foo", "x" * 300 + ".io/v1", "apiVersion", "is not a Kubernetes apiVersion"),
    ("NetworkPolicy", "networking.k8s.io/v9", "apiVersion", "'networking.k8s.io/v9' is not served; NetworkPolicy "
                                                            "is networking.k8s.io/v1"),
])
def test_a_kind_or_api_version_no_api_server_would_take_is_an_error(
        tmp_path: Path, kind: str, api_version: str, field: str, message: str) -> None:
    """Before kubernetes-validate builds a schema file name from them: '/', NUL and long names never get there."""
    path = _write(tmp_path, yaml.safe_dump({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}))
    report = validate_paths([path])
    [error] = report.errors
    assert (error.field, error.document) == (field, 0)
    assert message in error.message and "\n" not in str(error) and len(error.message) < 200


def test_an_unknown_but_well_formed_kind_is_still_a_note(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiVersion: example.com/v1alpha1\nkind: Widget\nmetadata: {name: w}\n")
    report = validate_paths([path])
    assert report.ok and report.notes == (f"{path} (document 0): Widget example.com/v1alpha1 has no bundled "
                                          "schema; not validated",)


_SAME_AS_KUBERNETES_VALIDATE = [
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "a", "namespace": "x"},
     "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "a"},
     "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelectr": {}}]}]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "a"},
     "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "endPort": "x"}]}]}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"team": 1}}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": {"replicas": "two"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "a"}, "rules": [{}]},
    {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"}},
]


def _kubernetes_validate_finding(body: dict[str, object]) -> jsonschema.ValidationError | str | None:
    """What the library's own ``validate`` finds: its error, "no schema", or None."""
    try:
        kubernetes_validate.validate(body, KUBERNETES_SCHEMA_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return "no schema"
    except jsonschema.ValidationError as exc:
        return exc
    return None


@pytest.mark.parametrize("body", _SAME_AS_KUBERNETES_VALIDATE)
def test_validators_built_once_find_what_kubernetes_validate_finds(body: dict[str, object]) -> None:
    """The schemas are loaded once per kind, not once per document; the findings stay kubernetes-validate's own."""
    doc = SourceDocument("m.yaml", 0, None, body)
    errors, note = validate_document(doc)
    finding = _kubernetes_validate_finding(body)
    if finding == "no schema":
        assert errors == []
        assert note == "m.yaml (document 0): Widget example.com/v1 has no bundled schema; not validated"
    elif isinstance(finding, jsonschema.ValidationError):
        assert [str(e) for e in errors] == [str(to_policy_error(doc, finding))]
        assert note is None
    else:
        assert (errors, note) == ([], None)
    assert bool(errors) is (body["kind"] != "Widget" and body["metadata"] != {"name": "a", "namespace": "x"})


def test_each_schema_is_read_once_however_many_documents_need_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository of 200 policies read and parsed kubernetes-validate's schemas once per document (1.6 MB
    of shared definitions each time): each kind's schema, the shared definitions and Cilium's CRD schema
    are read once per run, whatever the number of documents."""
    reads: Counter[str] = Counter()
    real = kubernetes_validate_utils.schema_contents

    def counting(filename: str, desired_version: str) -> Any:
        reads[filename.rsplit("/", 1)[-1]] += 1
        return real(filename, desired_version)

    monkeypatch.setattr(validation.kubernetes_validate_utils, "schema_contents", counting)
    for cached in (validation._kubernetes_validator, validation._kubernetes_definitions,
                   validation._cilium_validator):
        cached.cache_clear()  # what an earlier test built is not this run's reading
    docs = []
    for k in range(25):
        docs += [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"name": f"deny-{k}", "namespace": "default"}, "spec": {"podSelector": {}}},
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{k}"}},
                 {**yaml.safe_load(CNP), "metadata": {"name": f"cnp-{k}", "namespace": "default"}}]
    report = validate_paths([_write(tmp_path, yaml.safe_dump_all(docs))])
    assert report.ok, [str(e) for e in report.errors]
    assert len(report.checked) == 75
    assert reads == {"networkpolicy-networking-v1.json": 1, "namespace-v1.json": 1, "_definitions.json": 1}
    assert validation._cilium_validator.cache_info().misses == 1
