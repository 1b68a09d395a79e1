"""Submit a community result: scrub it, check it as CI will, file it under its content path.

The only thing a person adds is the optional free-text notes; the chip, memory and OS come
from the result itself. What comes after (a branch, a commit, a pull request) is
`pr_steps`: printed by `next_steps`, or run by `benchkit submit --pr` through
`community.pullrequest` where GitHub's `gh` is installed and logged in.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit.community.identity import community_relpath
from benchkit.community.scrub import scrub
from benchkit.community.validate import (ERROR, MAX_BYTES, MAX_NOTES, Verdict, check_document,
                                         duplicate_problems, file_problem, shown_path,
                                         standard_suites)
from benchkit.core.errors import BenchkitError

COMMUNITY_DIR = Path("results") / "community"


@dataclass
class Submission:
    """What submit did: the file it wrote (or found unchanged) and the checks' verdict."""

    path: Path
    status: str                      # written | updated | unchanged | rejected
    verdict: Verdict
    removed: list[str]
    doc: dict[str, Any]


def submit(result: str | os.PathLike[str], *, notes: str | None = None,
           root: str | os.PathLike[str] = COMMUNITY_DIR,
           suites_dir: str | os.PathLike[str] | None = None) -> Submission:
    """Scrub a result, check it as CI will, and file it under `root` by its content.

    Nothing is written when a check rejects it. The chip, GPU cores, memory and OS come
    from the result itself (the runner detected them); the only thing a person adds is
    the optional free-text `notes`.
    """
    from benchkit.core.atomicio import write_file
    from benchkit.core.safeio import read_bounded_bytes
    from benchkit.results.io import dumps, read_result

    doc = read_result(result)
    if notes is not None and len(notes) > MAX_NOTES:
        raise BenchkitError(f"{len(notes)} characters (at most {MAX_NOTES})", field="--notes")
    previous = doc.get("community") if isinstance(doc.get("community"), dict) else {}
    clean, removed = scrub(doc, local=True)
    removed = sorted(set(removed) | set(previous.get("removed") or []))
    clean.pop("community", None)
    clean["community"] = {"notes": (notes.strip() or None) if notes else previous.get("notes"),
                          "removed": removed}
    target = Path(root) / community_relpath(clean)
    verdict = Verdict(shown_path(target))
    check_document(clean, verdict, standard_suites(suites_dir))
    _check_duplicate(clean, target, Path(root), verdict)
    if not verdict.accepted:
        return Submission(target, "rejected", verdict, removed, clean)
    new_bytes = dumps(clean).encode("utf-8")
    if target.is_file() and not file_problem(target):
        old = read_bounded_bytes(target, MAX_BYTES, "community file")
        status = "unchanged" if old == new_bytes else "updated"
    else:
        status = "written"
    if status != "unchanged":           # whole or not at all: a full disk keeps the old file
        write_file(target, new_bytes, "community file")
    return Submission(target, status, verdict, removed, clean)


def _check_duplicate(doc: dict[str, Any], target: Path, root: Path, verdict: Verdict) -> None:
    if not root.is_dir():
        return
    for problem in duplicate_problems(doc, target, root):
        verdict.add(ERROR, None, problem)


def pr_steps(sub: Submission, *, absolute: bool = False) -> list[list[str]]:
    """The git commands that put the filed result on a branch of its own and push it;
    the commit holds that one file, whatever else is staged."""
    path = str(sub.path.resolve()) if absolute else shown_path(sub.path)
    branch = f"result-{sub.path.stem[:8]}"
    return [["git", "checkout", "-b", branch],
            ["git", "add", path],
            ["git", "commit", "-m", pr_title(sub), "--", path],
            ["git", "push", "-u", "origin", branch]]


def pr_title(sub: Submission) -> str:
    return f"Community result: {sub.path.parent.parent.name}, {sub.path.parent.name}"


def pr_body(sub: Submission, page: str | None) -> str:
    """The pull request's description: what the file is and where it will be shown."""
    notes = (sub.doc.get("community") or {}).get("notes")
    lines = [f"Adds `{shown_path(sub.path)}`, filed by `benchkit submit`.", "",
             "CI runs `benchkit validate` on it; once merged, CI rebuilds the site."]
    if page:
        lines.append(f"Its page will be {page}")
    if notes:
        lines += ["", "Notes from the submitter:", "", str(notes)]
    return "\n".join(lines)


def result_page(sub: Submission, site: str | None) -> str:
    """The result's page on the published site (or within any copy of the site)."""
    rel = f"results/{sub.path.stem}.html"
    return f"{site}{rel}" if site else rel


def next_steps(sub: Submission) -> list[str]:
    """What a contributor does after submit: a branch, a commit, a pull request."""
    return [shlex.join(argv) for argv in pr_steps(sub)] + [
        "open a pull request: CI runs `benchkit validate` on the new file; once merged, "
        "the site lists your chip as measured"]
