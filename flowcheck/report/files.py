"""Reading and writing report files: ``matrix.json`` and a run's report directory.

``--flowcheck-report DIR`` writes three projections of one ``MatrixReport``: ``matrix.json`` (the
data, the input of ``flowcheck baseline record``), ``report.html`` (the page to open from a CI
artifact) and ``report.md`` (what goes to the step summary). Files are written to a temporary name
and renamed, so a run killed half-way (a CI timeout) never leaves a truncated ``matrix.json`` that
a later baseline comparison would misread.

Reading turns every way a file can be wrong -- missing, unreadable, not JSON, wrong shape -- into a
``ReportFileError`` naming the file (and the field), which the command line prints as one line and
exit code 2.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowcheck.report.html_page import render_html
from flowcheck.report.markdown import render_markdown
from flowcheck.report.records import MatrixReport, ReportFileError, report_from_json

MATRIX_FILE = "matrix.json"
HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where ``write_report_dir`` put each file, and the Markdown it wrote (for the step summary)."""

    directory: Path
    matrix: Path
    html: Path
    markdown: Path
    markdown_text: str = field(repr=False)
    """The text of ``markdown``, so a caller that also sends it elsewhere need not render it again."""


def write_report_dir(report: MatrixReport, directory: str | os.PathLike[str]) -> ReportPaths:
    """Write ``matrix.json``, ``report.html`` and ``report.md`` into ``directory`` (created if missing)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    matrix, html, markdown = target / MATRIX_FILE, target / HTML_FILE, target / MARKDOWN_FILE
    write_text_atomic(matrix, json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    write_text_atomic(html, render_html(report))
    markdown_text = render_markdown(report)
    write_text_atomic(markdown, markdown_text)
    return ReportPaths(target, matrix, html, markdown, markdown_text)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes it 0600; a report is shared like any file
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_json_file(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; a missing, unreadable or invalid file is a ``ReportFileError`` naming it."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportFileError(name, "", "no such file") from None
    except IsADirectoryError:
        raise ReportFileError(name, "", "is a directory, expected a JSON file") from None
    except UnicodeDecodeError as exc:
        raise ReportFileError(name, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ReportFileError(name, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportFileError(name, "", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
            from None


def matrix_location(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or the ``matrix.json`` inside it when ``path`` is a report directory."""
    location = Path(path)
    return location / MATRIX_FILE if location.is_dir() else location


def read_matrix(path: str | os.PathLike[str]) -> MatrixReport:
    """Read a run's ``matrix.json`` (or the report directory that contains one), or ``flowcheck plan`` JSON."""
    location = matrix_location(path)
    return report_from_json(load_json_file(location), path=os.fspath(location))
