"""Manifests as they were at a git ref, read without touching the working tree.

``flowcheck diff --base REF`` compares the policies of the working tree with the same paths at
``REF`` (``origin/main``, ``HEAD~1``, a commit). Checking ``REF`` out would change the user's files
(or need a second worktree); instead the paths are exported from git's object store with ``git
archive REF -- PATH`` into a temporary directory, which every reader then reads like any other
directory -- kustomizations included. Nothing in the repository, its index or its working tree is
written.

A path that does not exist at ``REF`` (policies added by the change) exports nothing: the base has no
policies there, which ``RefTree.absent`` records so the command can say so. A ref git does not know,
or a path outside a git repository, is bad input naming the ref or the path.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flowcheck.errors import InputError, ToolMissing

GIT_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class RefTree:
    """The paths as exported at ``ref`` (``paths``, in the order asked; absent ones left out) and the asked
    paths that do not exist there (``absent``)."""

    ref: str
    commit: str
    paths: tuple[Path, ...]
    absent: tuple[str, ...]


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("git") is None:
        raise ToolMissing("git", "install git (--base reads the policies at a git ref)")
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=GIT_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise InputError(f"git {' '.join(args)} in {repo} did not finish in {GIT_TIMEOUT_S:.0f} s") from None


def _repository_of(path: Path) -> Path:
    start = path if path.is_dir() else path.parent
    if not start.exists():
        raise InputError(f"{path}: no such file or directory")
    result = _git(start, "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        raise InputError(f"{path}: not inside a git repository, so --base cannot read it at a ref "
                         "(give the old policies as --base-policies PATH instead)")
    return Path(result.stdout.decode().strip())


def _commit_of(repo: Path, ref: str) -> str:
    if ref.startswith("-"):
        raise InputError(f"--base {ref!r}: a git ref cannot start with '-'")
    result = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if result.returncode != 0:
        raise InputError(f"--base {ref}: not a commit in the git repository {repo} (a shallow clone may lack it: "
                         "fetch it, e.g. actions/checkout with fetch-depth: 0)")
    return result.stdout.decode().strip()


@contextmanager
def paths_at_ref(paths: Sequence[str | os.PathLike[str]], ref: str) -> Iterator[RefTree]:
    """Export ``paths`` as they are at ``ref`` into a temporary directory, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="flowcheck-base-") as tmp:
        exported: list[Path] = []
        absent: list[str] = []
        commits: dict[Path, str] = {}
        for index, given in enumerate(paths):
            path = Path(given).resolve()
            repo = _repository_of(path)
            commit = commits.get(repo) or _commit_of(repo, ref)
            commits[repo] = commit
            relative = path.relative_to(repo).as_posix() if path != repo else "."
            if _git(repo, "cat-file", "-e", f"{commit}:{'' if relative == '.' else relative}").returncode != 0:
                absent.append(str(given))
                continue
            archive = _git(repo, "archive", "--format=tar", commit, "--", relative)
            if archive.returncode != 0:
                detail = archive.stderr.decode(errors="replace").strip().splitlines()
                raise InputError(f"--base {ref}: git archive of {given} failed: {detail[-1] if detail else ''}")
            target = Path(tmp) / str(index)
            target.mkdir()
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(target, filter="data")
            exported.append(target / relative)
        yield RefTree(ref, next(iter(commits.values()), ""), tuple(exported), tuple(absent))
