"""The projection explorer shows what `benchkit project` prints: the page, opened from the
built folder in a real browser, against the command line run on the same results.

The explorer's figures come from the site's adapter (benchkit/community/site/projection.py)
at build time; each view prints the `benchkit project` command that gives them, and these
tests run that very command (with the test's results folder) and compare chip by chip.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from browser import session
from community_support import benchkit, built_site, community_data
from markdown_tables import tables

LAPTOP = (1300, 900)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return community_data(tmp_path_factory)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_site(tmp_path_factory)


ROWS_JS = """
return Object.fromEntries(Array.from(document.querySelectorAll('#x-table tbody tr')).map(r => [
  r.dataset.chip, {label: r.cells[0].innerText, cores: r.dataset.cores, kind: r.className,
                   decode: r.querySelector('.decode .fig').textContent,
                   prompt: r.querySelector('.prompt .fig').textContent,
                   decode_out: !!r.querySelector('.decode .mark.outside'),
                   prompt_out: !!r.querySelector('.prompt .mark.outside'),
                   status: r.cells[6].innerText}]));"""


def _view(site: Path, fragment: str) -> tuple[dict, str]:
    """The explorer's rows (by chip id) and its command, for a view given as a #fragment."""
    with session(*LAPTOP) as s:
        s.open(f"{(site / 'projection' / 'index.html').as_uri()}#{fragment}")
        s.wait("return document.querySelectorAll('#x-table tbody tr').length > 0 && "
               "document.getElementById('x-command').textContent;")
        rows, command = s.js(ROWS_JS), s.find("#x-command").text
        assert s.console_errors() == []
    return rows, command


def _cli(command: str, results: Path) -> list[list[str]]:
    """Run the page's command with this data set as --results; its Markdown table rows."""
    argv = shlex.split(command)
    assert argv[:2] == ["benchkit", "project"] and "--results" in argv
    argv[argv.index("--results") + 1] = str(results)
    proc = benchkit(*argv[1:])
    assert proc.returncode == 0, proc.stderr
    from markdown_it import MarkdownIt

    [table] = [t for t in tables(MarkdownIt("commonmark").enable("table").parse(proc.stdout))
               if t[0][0] == "Chip"]
    return table[1:]


def _row_of(cli: list[list[str]], page: dict) -> list[str]:
    """The command's row of a chip: its label, and its GPU cores where chips share a label
    (the table prints variants that read the same as one row, cores "7–8")."""
    rows = [r for r in cli if r[0] == page["label"]]
    if len(rows) > 1:
        def holds(cell: str) -> bool:
            bounds = [int(n) for n in re.findall(r"\d+", cell)]
            return bool(bounds) and bounds[0] <= int(page["cores"]) <= bounds[-1]
        rows = [r for r in rows if holds(r[1])]
    assert len(rows) == 1, (page, rows)
    return rows[0]


def _same(page: dict, cli: list[str]) -> None:
    """One chip: decode and prompt as printed, the out-of-range marks, the status."""
    decode, prompt, status = cli[3], cli[4], cli[5]
    assert page["decode"] == decode.removesuffix(" ⚠"), (page, cli)
    assert page["prompt"] == prompt.removesuffix(" ⚠"), (page, cli)
    assert page["decode_out"] == decode.endswith("⚠") and page["prompt_out"] == \
        prompt.endswith("⚠"), (page, cli)
    if status.startswith("✅ Measured"):
        assert page["kind"] == "measured"
        assert page["status"] == "measured " + status.split(": ", 1)[1]
    elif status == "Not tested":
        assert page["kind"] == "untested" and page["status"] == "not tested"
    else:
        assert page["kind"] == "nofit" and page["status"].startswith("does not fit")


@pytest.mark.parametrize("fragment", [
    "model=preset-llama-3.1-8b&quant=Q4_K_M&depth=4096",
    "model=measured-smollm2-135m-instruct.q4_1&depth=0&fa=on",
    "model=measured-smollm2-135m-instruct.q4_1&depth=0&fa=off",
])
def test_explorer_figures_equal_benchkit_project(site: Path, results: Path,
                                                 fragment: str) -> None:
    rows, command = _view(site, fragment)
    assert len(rows) > 150                                # every chip in the database
    cli = _cli(command, results)
    for chip in ("h100", "m4max", "rx7900xtx"):
        _same(rows[chip], _row_of(cli, rows[chip]))
    measured = {chip for chip, r in rows.items() if r["kind"] == "measured"}
    _same(rows["h200"], _row_of(cli, rows["h200"]))
    if fragment.endswith("fa=on"):
        assert measured == {"h100", "h200"}               # the chips someone measured, as run
    else:
        assert measured == set()                          # nobody ran this model, or so


def test_explorer_view_follows_the_controls_and_the_url(site: Path) -> None:
    from selenium.webdriver.support.ui import Select

    with session(*LAPTOP) as s:
        s.open(site / "projection" / "index.html")
        s.wait("return document.querySelectorAll('#x-table tbody tr').length > 0;")
        Select(s.find("#x-model")).select_by_value("preset-llama-3.1-8b")
        s.wait("return document.getElementById('x-command').textContent.includes('llama-3.1-8b');")
        Select(s.find("#x-quant")).select_by_value("Q8_0")
        Select(s.find("#x-depth")).select_by_value("16384")
        Select(s.find("#x-vendor")).select_by_value("apple")
        command = s.find("#x-command").text
        assert "--quant Q8_0" in command and "--depth 16384" in command
        vendors = s.js("return Array.from(document.querySelectorAll('#x-table tbody tr'))"
                       ".map(r => r.cells[1].innerText);")
        assert vendors and set(vendors) == {"apple"}
        s.find('#x-table th[data-key="decode"] button').click()
        decode = s.js("return Array.from(document.querySelectorAll('#x-table .decode .fig'))"
                      ".map(f => parseFloat(f.textContent.replace(/[~,]/g, '')))"
                      ".filter(v => !isNaN(v));")
        assert decode == sorted(decode, reverse=True)
        link = s.js("return document.getElementById('x-permalink').href;")
        s.open(site / "projection" / "index.html")             # a fresh view, then the link
        s.open(link)
        s.wait("return document.querySelectorAll('#x-table tbody tr').length > 0 && "
               "document.getElementById('x-command').textContent.includes('--quant');")
        assert s.js("return ['x-model', 'x-quant', 'x-depth', 'x-vendor']"
                    ".map(id => document.getElementById(id).value);") == [
            "preset-llama-3.1-8b", "Q8_0", "16384", "apple"]
        assert s.find("#x-command").text == command
        assert s.console_errors() == []
