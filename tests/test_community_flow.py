"""The community flow end to end, as a contributor and CI go through it.

A real, short run of the standard suite on this machine (`benchkit run`), `benchkit
submit` with notes that hold a script tag, `benchkit validate` on the filed file (what
the pull-request workflow runs), `benchkit site` (what the main-branch workflow runs),
and the pages opened in headless Chromium: the chip's row is marked measured, and the
notes are shown as text, never run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import open_page
from community_support import benchkit, standard_result

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

    # 5. the pages in a real browser
    index = open_page(site / "index.html", evaluate={
        "row": f"const r = document.querySelector('tr[data-chip=\"{chip}\"]');"
               "return r ? [r.className, r.innerText] : null;"})
    assert index.console_errors == []
    assert index.extra["row"] is not None, "the chip has no row on the index"
    row_class, row_text = index.extra["row"]
    assert row_class == "measured" and "✅ Measured" in row_text

    page = open_page(site / "results" / f"{filed.stem}.html", evaluate={
        "notes": "const n = document.getElementById('notes'); return n ? n.textContent : null;",
        "pwned": "return window.__pwned === true;",
        "scripts": "return document.scripts.length;",
        "images": "return document.images.length;"})
    assert page.console_errors == []
    assert page.extra["notes"] == SCRIPT_NOTES           # shown as text, character for character
    assert page.extra["pwned"] is False                  # neither payload ran
    assert page.title != "pwned" and page.title.startswith("Result ")
    assert page.extra["scripts"] == 0 and page.extra["images"] == 0
