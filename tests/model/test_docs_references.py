"""flowcheck's docstrings and comments cite documents in the repository, by section headings that exist.

``docs/semantics.md`` is the model's account of Cilium's and Kubernetes' semantics; the model's
modules cite its sections as ``docs/semantics.md, "Heading"``, and the user-facing contracts as
``docs/contracts.md, "Heading"``. A renamed heading or a citation of a document readers do not have
(the ``§`` references of old) would leave the code pointing nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "flowcheck"
SEMANTICS = REPO_ROOT / "docs" / "semantics.md"
CONTRACTS = REPO_ROOT / "docs" / "contracts.md"
# The headings of docs/contracts.md, fixed for issue 15 (that document is written beside this one).
CONTRACT_HEADINGS = {"Verdicts", "Topology file", "Flow file", "The flowcheck command", "The probe agent",
                     "The probe server", "Suites"}
CITATION = re.compile(r'docs/(semantics|contracts)\.md[,(]? ?\(?"([^"]+)"')


def headings(path: Path) -> set[str]:
    return {line[3:].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("## ")}


def citations() -> list[tuple[str, str, str]]:
    """(module, document, heading) for every citation in flowcheck, with line breaks inside it undone."""
    found = []
    for module in sorted(PACKAGE.rglob("*.py")):
        text = re.sub(r"\s*\n\s*(#\s*)?", " ", module.read_text(encoding="utf-8"))
        found.extend((str(module.relative_to(PACKAGE)), doc, heading) for doc, heading in CITATION.findall(text))
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


def test_nothing_cites_a_section_sign_or_a_path_outside_the_repository() -> None:
    """The old ``cilium-semantics §n`` / ``design §n`` references pointed to notes readers do not have; so does
    any absolute path of the machine the project was written on."""
    files = [*PACKAGE.rglob("*.py"), *(REPO_ROOT / "tests").rglob("*.py"), *(REPO_ROOT / "docs").glob("*.md"),
             REPO_ROOT / "README.md", *(REPO_ROOT / "benchmarks").glob("*.py"), *(REPO_ROOT / "scripts").glob("*")]
    outside = re.compile("§|/work/|\\.\\./shared/")
    offenders = [f"{path.relative_to(REPO_ROOT)}:{n}: {line.strip()}" for path in sorted(files)
                 if path.is_file() and path != Path(__file__)
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if outside.search(line) and " not in " not in line]  # a test may check for the absence
    assert offenders == []
