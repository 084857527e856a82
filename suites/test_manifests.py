"""Every policy manifest parses and validates before anything is applied to a cluster.

Core objects are checked against Kubernetes' OpenAPI schemas, Cilium policies against Cilium's
CRD schema, strictly (an unknown field is an error, as `kubectl apply` with strict field
validation makes it). A failure names the file, the document and the field.
"""

from __future__ import annotations

from pathlib import Path

from flowcheck.manifests.documents import KUSTOMIZATION_FILES, list_manifest_files, read_documents
from flowcheck.manifests.validation import validate_paths
from flowcheck.plugin.settings import FlowcheckSettings


def test_manifest_is_valid(manifest_file: Path) -> None:
    report = validate_paths([manifest_file])
    if manifest_file.name not in KUSTOMIZATION_FILES:
        assert report.checked or not report.ok, f"{manifest_file}: holds no Kubernetes object"
    problems = "\n".join(str(e) for e in report.errors)
    assert report.ok, f"invalid manifest:\n{problems}"


def test_every_policy_file_is_applied(flowcheck_settings: FlowcheckSettings) -> None:
    """Every policy file on disk is read when the directories are applied as Flux applies them
    (through their kustomization's ``resources``): a file left out would sit in git, never applied."""
    applied = {Path(doc.path).resolve() for doc in read_documents(flowcheck_settings.check.policies)}
    assert applied, f"no policies under {', '.join(map(str, flowcheck_settings.check.policies))}"
    on_disk = {f.resolve() for f in list_manifest_files(flowcheck_settings.check.policies)
               if f.name not in KUSTOMIZATION_FILES}
    never_applied = sorted(map(str, on_disk - applied))
    assert not never_applied, "policy files no kustomization lists:\n" + "\n".join(never_applied)
