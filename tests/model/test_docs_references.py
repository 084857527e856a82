"""The model's docstrings and comments cite documents in the repository, by section headings that exist.

``docs/semantics.md`` is the model's account of Cilium's and Kubernetes' semantics; the model's
modules cite its sections as ``docs/semantics.md, "Heading"``, and the user-facing contracts as
``docs/contracts.md, "Heading"``. A renamed heading or a citation of a document readers do not have
(the ``§`` references of old) would leave the code pointing nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO_ROOT

MODEL = REPO_ROOT / "flowcheck" / "model"
SEMANTICS = REPO_ROOT / "docs" / "semantics.md"
CONTRACTS = REPO_ROOT / "docs" / "contracts.md"
# The headings of docs/contracts.md, fixed for issue 15 (that document is written beside this one).
CONTRACT_HEADINGS = {"Verdicts", "Topology file", "Flow file", "The flowcheck command", "The probe agent",
                     "The probe server", "Suites"}
CITATION = re.compile(r'docs/(semantics|contracts)\.md[,(]? ?\(?"([^"]+)"')


def headings(path: Path) -> set[str]:
    return {line[3:].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("## ")}


def citations() -> list[tuple[str, str, str]]:
    """(module, document, heading) for every citation in the model, with line breaks inside it undone."""
    found = []
    for module in sorted(MODEL.glob("*.py")):
        text = re.sub(r"\s*\n\s*(#\s*)?", " ", module.read_text(encoding="utf-8"))
        found.extend((module.name, doc, heading) for doc, heading in CITATION.findall(text))
    return found


def test_every_cited_section_of_the_semantics_exists() -> None:
    known = headings(SEMANTICS)
    cited = [(module, heading) for module, doc, heading in citations() if doc == "semantics"]
    assert len(cited) > 20
    assert [c for c in cited if c[1] not in known] == []


def test_every_cited_section_of_the_contracts_is_one_of_its_headings() -> None:
    known = headings(CONTRACTS) if CONTRACTS.exists() else CONTRACT_HEADINGS
    cited = [(module, heading) for module, doc, heading in citations() if doc == "contracts"]
    assert cited
    assert [c for c in cited if c[1] not in known] == []


def test_the_model_cites_no_section_sign_of_a_document_outside_the_repository() -> None:
    """The old ``cilium-semantics §n`` / ``design §n`` references pointed to notes readers do not have."""
    offenders = [f"{m.name}:{n}: {line.strip()}" for m in sorted(MODEL.glob("*.py"))
                 for n, line in enumerate(m.read_text(encoding="utf-8").splitlines(), 1)
                 if "§" in line and m.name not in ("documents.py", "validation.py")]
    assert offenders == []
