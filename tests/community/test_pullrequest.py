"""`benchkit submit --pr`: the pull request opened with `gh`, in a real git repository.

`gh` here is a small executable first on PATH that records its argv and answers as the
real one does (`auth status` exits 0 when logged in; `pr create` prints the pull request's
address). git is the real one, pushing to a bare repository that stands for GitHub: the
`origin` remote is configured as a github.com address and rewritten to the bare one with
`url.<base>.insteadOf`, so the site's address is derived as it is for a real clone.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from community_support import REPO, benchkit, standard_result

ORIGIN = "https://github.com/Someone/benchkit.git"
PR_URL = "https://github.com/Someone/benchkit/pull/7"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

FAKE_GH = """#!{python}
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["auth", "status"]:
    sys.exit({auth})
if sys.argv[1:3] == ["pr", "create"]:
    print({url!r})
    sys.exit(0)
sys.exit(1)
"""


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A clone-like repository: one commit on main, origin a github.com address that git
    rewrites to a bare repository beside it."""
    bare = tmp_path / "github.git"
    _git(tmp_path, "init", "-q", "--bare", str(bare))
    work = tmp_path / "benchkit"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("benchkit\n")
    _git(work, "add", "README.md")
    _git(work, "commit", "-q", "-m", "first")
    _git(work, "remote", "add", "origin", ORIGIN)
    _git(work, "config", f"url.{bare}.insteadOf", ORIGIN)
    _git(work, "push", "-q", "origin", "main")
    return work


def _fake_gh(tmp_path: Path, *, logged_in: bool) -> tuple[dict[str, str], Path]:
    """PATH with the recording `gh` first, and the file its calls are logged to."""
    bin_dir, log = tmp_path / "bin", tmp_path / "gh-calls.jsonl"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable, log=str(log), url=PR_URL,
                                 auth=0 if logged_in else 1))
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, **GIT_ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, log


def _submit(real: Path, repo: Path, env: dict[str, str], *extra: str):
    return subprocess.run([sys.executable, "-m", "benchkit.cli.main", "submit", str(real),
                           "--root", "results/community", "--suites", str(REPO / "suites"),
                           *extra], cwd=repo, capture_output=True, text=True, timeout=600,
                          env=env)


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_pr_opens_the_pull_request_with_gh(tmp_path_factory: pytest.TempPathFactory,
                                           repo: Path, tmp_path: Path) -> None:
    real = standard_result(tmp_path_factory)
    env, log = _fake_gh(tmp_path, logged_in=True)
    proc = _submit(real, repo, env, "--pr", "--notes", "plugged in")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [filed] = sorted((repo / "results" / "community").rglob("*.json"))
    branch = f"result-{filed.stem[:8]}"
    # git: the branch holds one commit with the one file, pushed to the remote
    bare = tmp_path / "github.git"
    assert _git(bare, "branch", "--list", branch).strip().endswith(branch)
    rel = filed.relative_to(repo).as_posix()
    assert [line for line in _git(repo, "show", "--name-only", "--format=%s", branch)
            .splitlines() if line] == [
        f"Community result: {filed.parent.parent.name}, {filed.parent.name}", rel]
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == branch
    # gh: asked whether it is logged in, then to open the pull request from that branch
    calls = _calls(log)
    assert calls[0] == ["auth", "status"]
    create = calls[-1]
    assert create[:2] == ["pr", "create"] and create[create.index("--head") + 1] == branch
    body = create[create.index("--body") + 1]
    assert rel in body and "plugged in" in body
    page = f"https://someone.github.io/benchkit/results/{filed.stem}.html"
    assert f"pull request: {PR_URL}" in proc.stdout
    assert page in proc.stdout and page in body


def test_without_gh_login_the_steps_are_printed(tmp_path_factory: pytest.TempPathFactory,
                                                repo: Path, tmp_path: Path) -> None:
    real = standard_result(tmp_path_factory)
    env, log = _fake_gh(tmp_path, logged_in=False)
    proc = _submit(real, repo, env, "--pr")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "pull request not opened: gh is not logged in" in proc.stderr
    [filed] = sorted((repo / "results" / "community").rglob("*.json"))     # still filed
    assert f"git checkout -b result-{filed.stem[:8]}" in proc.stdout
    assert _calls(log) == [["auth", "status"]]                # nothing else was asked of gh
    assert _git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"      # no branch made


def test_without_pr_nothing_runs(tmp_path_factory: pytest.TempPathFactory, repo: Path,
                                 tmp_path: Path) -> None:
    real = standard_result(tmp_path_factory)
    env, log = _fake_gh(tmp_path, logged_in=True)
    proc = _submit(real, repo, env)
    assert proc.returncode == 0, proc.stderr
    assert "next steps:" in proc.stdout and "--pr" in proc.stdout
    assert _calls(log) == []
    [filed] = sorted((repo / "results" / "community").rglob("*.json"))
    assert f"https://someone.github.io/benchkit/results/{filed.stem}.html" in proc.stdout


def test_a_failing_push_leaves_the_rest_to_do(tmp_path_factory: pytest.TempPathFactory,
                                              repo: Path, tmp_path: Path) -> None:
    real = standard_result(tmp_path_factory)
    env, log = _fake_gh(tmp_path, logged_in=True)
    _git(repo, "config", "--unset", f"url.{tmp_path / 'github.git'}.insteadOf")
    _git(repo, "remote", "set-url", "origin", str(tmp_path / "missing.git"))
    proc = _submit(real, repo, env, "--pr", "--site-url", "https://example.org/site")
    assert proc.returncode == 1
    assert "pull request not opened: `git push -u` failed" in proc.stderr
    assert "ran: git commit -m" in proc.stdout
    steps = [line.strip() for line in proc.stdout.splitlines()
             if re.match(r"^  \d+\. ", line)]
    assert steps[0].startswith("4. git push -u origin result-")     # the rest, numbered on
    assert [c[:2] for c in _calls(log)] == [["auth", "status"]]
    assert "https://example.org/site/results/" in proc.stdout
