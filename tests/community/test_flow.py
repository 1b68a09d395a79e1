"""The community flow end to end, as a contributor and CI go through it.

A real, short run of the standard suite on this machine (`benchkit run`), `benchkit
submit` with notes that hold a script tag, `benchkit validate` on the filed file (what
the pull-request workflow runs), `benchkit site` (what the main-branch workflow runs),
and the pages opened in headless Chromium: the chip's row is marked measured, and the
notes are shown as text, never run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import open_page
from community_support import REPO, benchkit, standard_result

SCRIPT_NOTES = ("<script>document.title = 'pwned'; window.__pwned = true;</script>"
                "<img src=x onerror=\"window.__pwned = true\"> tested on battery")


def test_run_submit_validate_site_in_a_browser(tmp_path_factory: pytest.TempPathFactory,
                                               tmp_path: Path) -> None:
    # 1. benchkit run suites/standard.yaml (kept short: 3 iterations, no warmup)
    result = standard_result(tmp_path_factory)

    # 2. benchkit submit: filed under results/community/<chip>/<model>/<id>.json
    repo = tmp_path / "repo"
    community = repo / "results" / "community"
    sub = benchkit("submit", str(result), "--root", str(community), "--notes", SCRIPT_NOTES)
    assert sub.returncode == 0, sub.stderr
    [filed] = sorted(community.rglob("*.json"))
    chip, model = filed.relative_to(community).parts[:2]
    assert chip.startswith("cpu-") and model == "smollm2-135m-instruct.q4_1"
    assert "next steps" in sub.stdout and f"git add {filed}" in sub.stdout

    # 3. benchkit validate on the changed file, as the pull-request workflow does
    val = benchkit("validate", str(filed))
    assert val.returncode == 0, val.stderr
    assert "1 accepted, 0 rejected" in val.stdout
    assert not [line for line in val.stderr.splitlines() if line.startswith("error:")]

    # 4. benchkit site, as the main-branch workflow does
    site = tmp_path / "site"
    built = benchkit("site", str(community), "-o", str(site))
    assert built.returncode == 0, built.stderr
    assert "from 1 accepted result(s)" in built.stdout

    # 5. the pages in a real browser: the chip's tests in the leaderboard, marked
    #    measured on the model's page
    index = open_page(site / "index.html", evaluate={
        "rows": f"return Array.from(document.querySelectorAll('#board tr[data-chip=\"{chip}\"]'))"
                ".map(r => [r.dataset.test, r.dataset.model]);"})
    assert index.console_errors == []
    assert sorted(index.extra["rows"]) == [["pp512", model], ["tg128", model]]
    model_page = open_page(site / "models" / f"{model}.html", evaluate={
        "row": f"const r = document.querySelector('#per-chip tr[data-chip=\"{chip}\"]');"
               "return r ? r.querySelector('.mark.measured').textContent : null;"})
    assert model_page.console_errors == [] and model_page.extra["row"] == "measured"

    page = open_page(site / "results" / f"{filed.stem}.html", evaluate={
        "notes": "const n = document.getElementById('notes'); return n ? n.textContent : null;",
        "pwned": "return window.__pwned === true;",
        "scripts": "return document.scripts.length;",
        "images": "return document.images.length;"})
    assert page.console_errors == []
    assert page.extra["notes"] == SCRIPT_NOTES           # shown as text, character for character
    assert page.extra["pwned"] is False                  # neither payload ran
    assert page.title != "pwned" and page.title.startswith("Result ")
    assert page.extra["scripts"] == 0 and page.extra["images"] == 0   # a result page runs none


# --- the CI workflow: thin, safe, and its steps are the commands tested above -----------

WORKFLOW = REPO / ".github" / "workflows" / "community.yml"


def _workflow() -> dict:
    import yaml

    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    doc["on"] = doc.pop(True, doc.get("on"))      # YAML 1.1 reads the key `on` as true
    return doc


def _run_steps(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_workflow_is_safe_for_pull_requests() -> None:
    wf = _workflow()
    assert set(wf["on"]) >= {"pull_request", "push"}
    assert "pull_request_target" not in wf["on"]
    assert wf["on"]["pull_request"]["paths"] == ["results/community/**"]
    assert wf["permissions"] == {"contents": "read"}
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." not in text.replace("no secrets.", "")
    assert "pull_request_target" not in text.replace("never `pull_request_target`", "")
    validate = wf["jobs"]["validate"]
    assert "permissions" not in validate                  # inherits contents: read
    for step in validate["steps"]:
        assert step.get("with", {}).get("persist-credentials", False) is False or \
            "checkout" not in step.get("uses", "")
    # Only the publishing job may write, and it runs on main, not on pull requests.
    writers = {name for name, job in wf["jobs"].items() if job.get("permissions")}
    assert writers == {"deploy", "commit-site"}
    assert wf["jobs"]["deploy"]["if"] == "github.event_name != 'pull_request'"
    assert wf["jobs"]["commit-site"]["if"] == ("github.event_name == 'push' && "
                                               "github.ref == 'refs/heads/main'")
    assert wf["jobs"]["commit-site"]["permissions"] == {"contents": "write"}


def test_workflow_steps_are_benchkit_commands() -> None:
    wf = _workflow()
    for name, job in wf["jobs"].items():
        for script in _run_steps(job):
            for command in _commands(script):
                assert command.split()[0] in ("pip", "benchkit", "git"), (name, command)
    steps = " ".join(_run_steps(wf["jobs"]["validate"]) + _run_steps(wf["jobs"]["build"]))
    assert "benchkit validate" in steps and "benchkit site" in steps
    # on merge, the committed site is rebuilt from the committed results and committed
    commit = " ".join(_run_steps(wf["jobs"]["commit-site"]))
    assert "benchkit site results/community/ -o reports/site/" in commit
    assert "git add -A reports/site/" in commit and "git push" in commit


def _commands(script: str) -> list[str]:
    """The commands of a step: split on && and pipes, continuation lines joined."""
    import re

    joined = script.replace("\\\n", " ")
    parts = re.split(r"&&|\|(?!\|)|\n", joined)
    out = []
    for part in parts:
        part = part.strip()
        if part.startswith("xargs"):
            part = part.split("--no-run-if-empty", 1)[1].strip()
        if part:
            out.append(part)
    return out


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env={**os.environ, "GIT_AUTHOR_NAME": "t",
                                           "GIT_AUTHOR_EMAIL": "t@example.org",
                                           "GIT_COMMITTER_NAME": "t",
                                           "GIT_COMMITTER_EMAIL": "t@example.org"})
    return proc.stdout.strip()


def _shell(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a workflow step's script with bash, with this interpreter's `benchkit` first."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": path, **env})


def test_pull_request_step_validates_changed_files_only(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """The validate job's own script, run in a real git repository: base, then a PR."""
    [script] = [s for s in _run_steps(_workflow()["jobs"]["validate"]) if "benchkit" in s]
    result = standard_result(tmp_path_factory)
    shutil.copytree(REPO / "suites", tmp_path / "base" / "suites")
    pr = tmp_path / "pr"
    pr.mkdir()
    _git(pr, "init", "-q")
    # The base branch already holds a broken file: not the pull request's business.
    old = pr / "results" / "community" / "legacy.json"
    old.parent.mkdir(parents=True)
    old.write_text("{}", encoding="utf-8")
    _git(pr, "add", "-A")
    _git(pr, "commit", "-q", "-m", "base")
    base = _git(pr, "rev-parse", "HEAD")
    # The pull request adds one real, submitted result.
    assert benchkit("submit", str(result), "--root", str(pr / "results" / "community"),
                    cwd=pr).returncode == 0
    _git(pr, "add", "-A")
    _git(pr, "commit", "-q", "-m", "add a result")
    ok = _shell(script, pr, BASE_SHA=base)
    assert ok.returncode == 0, ok.stderr
    assert "1 file(s): 1 accepted, 0 rejected" in ok.stdout
    # A second commit edits the result after submit: the step fails the pull request.
    [filed] = [p for p in (pr / "results" / "community").rglob("*.json") if p != old]
    doc = json.loads(filed.read_text(encoding="utf-8"))
    doc["cases"][0]["summary"]["tps_median"] *= 2
    filed.write_text(json.dumps(doc), encoding="utf-8")
    _git(pr, "commit", "-q", "-am", "better numbers")
    bad = _shell(script, pr, BASE_SHA=base)
    assert bad.returncode != 0
    assert "legacy.json" not in bad.stderr
    assert any(line.startswith("error:") and filed.name in line for line in bad.stderr.splitlines())


def test_main_branch_steps_build_the_site_from_the_seeded_results(tmp_path: Path) -> None:
    """The build job's benchkit steps, on a copy of the repository's results/community."""
    scripts = [s for s in _run_steps(_workflow()["jobs"]["build"]) if s.startswith("benchkit")]
    assert len(scripts) == 2
    shutil.copytree(REPO / "results" / "community", tmp_path / "results" / "community")
    shutil.copytree(REPO / "suites", tmp_path / "suites")
    for script in scripts:
        proc = _shell(script, tmp_path)
        assert proc.returncode == 0, (script, proc.stderr)
    assert (tmp_path / "reports" / "site" / "index.html").is_file()
    # The committed pages are those the workflow builds from the committed results
    # (CI refreshes them on merge: `benchkit site results/community -o reports/site`): the
    # same pages, and the same result files. Page bytes are not compared: they also follow
    # the chip database and the projection's priors, which change on their own.
    committed = REPO / "reports" / "site"

    def tree(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes()
                for p in sorted(root.rglob("*")) if p.is_file()}

    built, kept = tree(tmp_path / "reports" / "site"), tree(committed)
    assert sorted(built) == sorted(kept)
    stable = [name for name in built if name.startswith("results/")]
    assert stable and all(built[name] == kept[name] for name in stable)
