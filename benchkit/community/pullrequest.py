"""Open the pull request of a submitted result with GitHub's `gh`, where it is installed
and logged in: a branch, a commit of the one file, a push, `gh pr create`.

Every step is a plain git or gh command, run without a shell and shown as it runs; the
first that fails stops the rest, and the caller prints what is left to do by hand (the
result file stays filed: nothing measured is lost). The link to the result's page on the
published site comes from the `origin` remote (GitHub Pages' address) or `--site-url`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

Runner = Callable[[Sequence[str], Path], subprocess.CompletedProcess]
GITHUB = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
                    r"([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")


@dataclass
class Outcome:
    """What `open_pull_request` did: the pull request's address, or why it stopped."""

    url: str | None = None
    problem: str | None = None           # why no pull request was opened
    done: list[str] = field(default_factory=list)     # the commands that ran


def run(argv: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
    """One command, no shell, output kept (git and gh print errors on stderr)."""
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)


def gh_ready(cwd: Path, runner: Runner = run) -> str | None:
    """None when `gh` is installed and logged in; else why not, in a few words."""
    if shutil.which("gh") is None:
        return "gh (GitHub's command line) is not installed"
    try:
        proc = runner(["gh", "auth", "status"], cwd)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"gh could not run: {exc}"
    return None if proc.returncode == 0 else "gh is not logged in (gh auth login)"


def open_pull_request(path: Path, steps: list[list[str]], title: str, body: str,
                      runner: Runner = run) -> Outcome:
    """Run `steps` (git argv lists) in the repository that holds `path`, then `gh pr
    create`; stop at the first command that fails."""
    out = Outcome()
    top = repository_root(path, runner)
    if top is None:
        out.problem = f"{path} is not inside a git repository"
        return out
    branch = steps[0][-1]
    for argv in steps + [["gh", "pr", "create", "--head", branch, "--title", title,
                          "--body", body]]:
        try:
            proc = runner(argv, top)
        except (OSError, subprocess.SubprocessError) as exc:
            out.problem = f"`{' '.join(argv[:3])}` could not run: {exc}"
            return out
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout or "").strip().splitlines()
            out.problem = (f"`{' '.join(argv[:3])}` failed (exit {proc.returncode})"
                           + (f": {last[-1]}" if last else ""))
            return out
        out.done.append(" ".join(argv[:3]))
    urls = re.findall(r"https://\S+", proc.stdout or "")
    out.url = urls[-1] if urls else (proc.stdout or "").strip() or None
    return out


def repository_root(path: Path, runner: Runner = run) -> Path | None:
    try:
        proc = runner(["git", "rev-parse", "--show-toplevel"], path.parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None


def site_url(path: Path, explicit: str | None = None, runner: Runner = run) -> str | None:
    """The published site's address: `explicit`, else GitHub Pages' address of the
    repository the `origin` remote names (as configured, before any insteadOf)."""
    if explicit:
        return explicit if explicit.endswith("/") else explicit + "/"
    try:
        proc = runner(["git", "config", "--get", "remote.origin.url"], path.parent)
    except (OSError, subprocess.SubprocessError):
        return None
    match = GITHUB.match(proc.stdout.strip()) if proc.returncode == 0 else None
    if not match:
        return None
    owner, repo = match.groups()
    if repo.lower() == f"{owner.lower()}.github.io":
        return f"https://{owner.lower()}.github.io/"
    return f"https://{owner.lower()}.github.io/{repo}/"
