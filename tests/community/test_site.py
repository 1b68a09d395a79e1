"""`benchkit site`: deterministic, relative-linked, escaped pages of the accepted results.

The data set here is the real short run of the standard suite filed three times: as
measured on this machine's CPU, and altered to read as the runner writes it on an H100
and an H200 (so that the projection table has chips in the database to calibrate on
and to mark as measured).
"""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from browser import open_page
from community_support import as_nvidia, benchkit, load, standard_result, write

NOTES = "<script>document.title='XSS'; window.__xss = 1;</script> fan at full speed & <b>hot</b>"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    real = standard_result(tmp_path_factory)
    work = tmp_path_factory.mktemp("site-data")
    root = work / "community"
    doc = load(real)
    sources = [(real, NOTES),
               (write(as_nvidia(doc, speedup=30.0), work / "h100.json"), None),
               (write(as_nvidia(doc, chip_id="h200", name="NVIDIA H200", speedup=31.0),
                      work / "h200.json"), None)]
    for src, notes in sources:
        args = ["submit", str(src), "--root", str(root)] + (["--notes", notes] if notes else [])
        proc = benchkit(*args)
        assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def site(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    proc = benchkit("site", str(results), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "from 3 accepted result(s)" in proc.stdout
    return out


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
    assert benchkit("site", str(copy), "-o", str(again)).returncode == 0
    assert _tree(again) == _tree(site)


def test_pages_for_index_chips_results_and_projection(results: Path, site: Path) -> None:
    files = _tree(site)
    ids = sorted(p.stem for p in results.rglob("*.json"))
    assert "index.html" in files and "style.css" in files
    for chip in ("h100", "h200", _cpu_chip(results)):
        assert f"chips/{chip}.html" in files
    for rid in ids:
        assert f"results/{rid}.html" in files and f"results/{rid}.json" in files
    assert "projection/smollm2-135m-instruct.q4_1.html" in files


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
            target = (page.parent / link.split("#")[0]).resolve()
            assert target.is_file(), (page, link)
            checked += 1
    assert checked > 10


def test_community_text_is_escaped_in_the_html(results: Path, site: Path) -> None:
    html = "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("results/*.html"))
    assert "&lt;script&gt;document.title=" in html
    assert "<script>" not in html
    assert "&lt;b&gt;hot&lt;/b&gt;" in html


def test_index_marks_each_measured_chip_in_a_browser(results: Path, site: Path) -> None:
    page = open_page(site / "index.html", evaluate={
        "rows": "return Array.from(document.querySelectorAll('tr[data-chip]'))"
                ".map(r => [r.dataset.chip, r.innerText]);"})
    assert page.console_errors == []
    rows = dict(page.extra["rows"])
    assert set(rows) == {"h100", "h200", _cpu_chip(results)}
    assert all("Measured" in text for text in rows.values())
    # The GPU rows are projected from the other GPU's measurement, with an error.
    assert "%" in rows["h100"] and "%" in rows["h200"]


def test_projection_table_marks_measured_chips(site: Path) -> None:
    page = open_page(site / "projection/smollm2-135m-instruct.q4_1.html", evaluate={
        "rows": "return Array.from(document.querySelectorAll('tr[data-chip]'))"
                ".map(r => [r.dataset.chip, r.className, r.innerText]);"})
    assert page.console_errors == []
    rows = {chip: (cls, text) for chip, cls, text in page.extra["rows"]}
    assert rows["h100"][0] == "measured" and "Measured" in rows["h100"][1]
    assert rows["h200"][0] == "measured"
    assert rows["m4max"][0] == "" and "Not tested" in rows["m4max"][1]
    assert len(rows) > 40                                     # every chip in the database


def test_result_and_chip_pages_load(results: Path, site: Path) -> None:
    rid = next((results / _cpu_chip(results)).rglob("*.json")).stem
    page = open_page(site / f"results/{rid}.html")
    assert page.console_errors == []
    assert {"Figures", "Placement", "Environment", "Model"} <= set(page.heading_texts)
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
    proc = benchkit("site", str(data), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("skipped:") and bad.name in line and "schema_version" in line
               for line in proc.stderr.splitlines())
    assert not (out / "results" / f"{bad.stem}.html").exists()
    assert "from 2 accepted result(s)" in proc.stdout


def test_rebuild_drops_pages_of_removed_results(results: Path, tmp_path: Path) -> None:
    data = tmp_path / "community"
    shutil.copytree(results, data)
    out = tmp_path / "site"
    assert benchkit("site", str(data), "-o", str(out)).returncode == 0
    gone = next((data / "h200").rglob("*.json"))
    gone.unlink()
    assert benchkit("site", str(data), "-o", str(out)).returncode == 0
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
