"""`benchkit report` on a real short run of the SmolLM2 model.

The Markdown is parsed by a real Markdown parser (markdown-it-py, tables on), the HTML is
opened in a real headless Chromium, and the figures on the page are checked against the
result file they came from.
"""

from __future__ import annotations

from markdown_tables import headings as _headings, tables as _tables

from paths import REPO

import json
import re
import shutil
import statistics
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from benchkit.core.units import fmt_tps
from conftest import run_benchkit

# The sections a report of the short SmolLM2 run must have: it holds throughput, detail,
# placement and decode figures. Projections are always present: on a CPU-only machine the
# section says why there is no projection instead of inventing a peak bandwidth.
SECTIONS = ["Summary", "Performance metrics", "Benchmark detail",
            "Power, energy and utilisation", "Resource utilisation and layer distribution", "Achieved memory bandwidth",
            "Projections for other chips", "Environment", "Methodology"]


def _report(result: Path, out: Path, *extra: str):
    proc = run_benchkit("report", str(result), "-o", str(out), *extra)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def _doc(result: Path) -> dict:
    return json.loads(result.read_text(encoding="utf-8"))


def _configurations(doc: dict) -> set[str]:
    """Engine configurations of a run; n_ctx is left out because the runner sizes the
    context to each workload unless the suite fixes it."""
    return {json.dumps({k: v for k, v in c["engine"].items() if k != "n_ctx"}, sort_keys=True)
            for c in doc["cases"]}


@pytest.fixture(scope="module")
def md_report(smollm2_result: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-md") / "smollm2"
    _report(smollm2_result, out, "--format", "md")
    return out.with_suffix(".md")


@pytest.fixture(scope="module")
def html_report(smollm2_result: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-html") / "smollm2"
    _report(smollm2_result, out, "--format", "html")
    return out.with_suffix(".html")


def _sections(result: Path) -> list[str]:
    """SECTIONS, plus the warnings section when the run recorded warnings or failures."""
    cases = _doc(result)["cases"]
    flagged = any(c.get("warnings") or c["status"] != "ok" for c in cases)
    return SECTIONS + (["Warnings and failed cases"] if flagged else [])


def test_markdown_tables_render(md_report: Path, smollm2_result: Path) -> None:
    text = md_report.read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    assert _headings(tokens) == _sections(smollm2_result)
    tables = _tables(tokens)
    assert len(tables) >= 8
    for table in tables:
        width = len(table[0])
        assert width >= 2 and len(table) >= 2, table
        # a stray pipe would give a row more cells than its header (parser drops them)
        for row in table:
            assert len(row) == width
    raw_rows = [line for line in text.splitlines() if line.startswith("|")]
    for line in raw_rows:
        assert len(re.findall(r"(?<!\\)\|", line)) >= 3, line

    perf = next(t for t in tables if t[0][0] == "Configuration" and "Backend" in t[0])
    doc = _doc(smollm2_result)
    assert len(perf) - 1 == len(_configurations(doc))   # one row per engine configuration
    assert sum(r[-1] == "baseline" for r in perf[1:]) == 1
    # the decode figure printed is the median of the result's own iterations
    tg = [c for c in doc["cases"] if c["workload"]["kind"] == "tg"]
    for case, row in zip(tg, perf[1:]):
        median = statistics.median(i["tps"] for i in case["iterations"])
        decode = row[3]
        assert f"**{fmt_tps(median)}** tok/s" in decode
        assert f"n={len(case['iterations'])}" in decode       # iterations count shown
        assert "±" in decode and "CV" in decode               # and the spread


def test_markdown_images_are_files_beside_it(md_report: Path) -> None:
    text = md_report.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) >= 3          # throughput, per-iteration, bandwidth
    for name in images:
        assert "/" not in name and name.endswith(".svg")
        svg = (md_report.parent / name).read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_markdown_detail_has_every_workload(md_report: Path, smollm2_result: Path) -> None:
    tokens = MarkdownIt("commonmark").enable("table").parse(md_report.read_text("utf-8"))
    doc = _doc(smollm2_result)
    tests = list(dict.fromkeys(c["test"] for c in doc["cases"]))
    detail = [t for t in _tables(tokens) if t[0][0] == "Metric"]
    assert detail, "no benchmark detail table"
    for table in detail:
        assert table[0][1:] == tests
        metrics = [r[0] for r in table[1:]]
        for needed in ("Total tokens", "Total time", "Avg latency per token",
                       "p50 / p90 / p99 per-token latency",
                       "Time to first token, median (p90)"):
            assert needed in metrics
        ttft = table[1 + metrics.index("Time to first token, median (p90)")]
        chat_col = 1 + tests.index("chat")
        assert ttft[chat_col].endswith(")") and "ms" in ttft[chat_col]
        latency = table[1 + metrics.index("p50 / p90 / p99 per-token latency")]
        assert "tokens" in latency[chat_col]


@pytest.mark.browser
def test_html_opens_in_chromium(html_report: Path, smollm2_result: Path) -> None:
    from browser import distinct_colours, open_page

    page = open_page(html_report, full_page=True)
    assert page.console_errors == []
    h2 = [text for tag, text in page.headings if tag == "h2"]
    assert h2 == _sections(smollm2_result)
    assert distinct_colours(page.screenshot_png) > 50     # text, tables, charts painted


@pytest.mark.browser
def test_html_readable_on_a_phone(html_report: Path) -> None:
    from browser import PHONE, open_page

    page = open_page(html_report, width=PHONE[0], height=PHONE[1])
    assert page.console_errors == []
    assert not page.overflows_horizontally     # wide tables scroll inside their box


def test_html_is_self_contained(html_report: Path) -> None:
    html = html_report.read_text(encoding="utf-8")
    assert '<meta name="viewport"' in html
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    assert html.count("<svg") >= 3            # charts inline, not linked
    # chart ids were made unique, so no chart borrows another's clip path
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


def test_html_escapes_community_text(smollm2_result: Path, tmp_path: Path) -> None:
    doc = _doc(smollm2_result)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    doc["suite"]["description"] = evil
    doc["environment"]["cpu"]["model"] = evil
    doc["environment"]["chip"]["name"] = evil
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(doc), encoding="utf-8")
    _report(edited, tmp_path / "r", "--format", "both")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(" in html
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "<script" not in md and "&lt;script>" in md


def test_report_of_two_runs_labels_each(smollm2_result: Path, tmp_path: Path) -> None:
    """Two result files: every configuration of both appears, each label unique."""
    second = tmp_path / "second.json"
    shutil.copy(smollm2_result, second)
    _report(smollm2_result, tmp_path / "two", "--format", "md")  # one file works
    proc = run_benchkit("report", str(smollm2_result), str(second), "-o",
                        str(tmp_path / "both"), "--format", "md")
    assert proc.returncode == 0, proc.stderr
    tokens = MarkdownIt("commonmark").enable("table").parse(
        (tmp_path / "both.md").read_text("utf-8"))
    perf = next(t for t in _tables(tokens) if t[0][0] == "Configuration" and "Backend" in t[0])
    labels = [r[0] for r in perf[1:]]
    assert len(labels) == 2 * len(_configurations(_doc(smollm2_result)))
    assert len(set(labels)) == len(labels)


# --------------------------------------------------------------------------- bad input

def _one_error_line(proc, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0]


def test_no_result_given(tmp_path: Path) -> None:
    _one_error_line(run_benchkit("report", "-o", str(tmp_path / "r")), "no result files")


def test_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_error_line(run_benchkit("report", str(empty)), str(empty), "no result files")


def test_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    _one_error_line(run_benchkit("report", str(bad), "-o", str(tmp_path / "r")),
                    str(bad), "not JSON")
    assert not (tmp_path / "r.html").exists()


def test_other_schema_version(smollm2_result: Path, tmp_path: Path) -> None:
    doc = _doc(smollm2_result)
    doc["schema_version"] = 99
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(doc), encoding="utf-8")
    _one_error_line(run_benchkit("report", str(smollm2_result), str(newer), "-o",
                                 str(tmp_path / "r")), str(newer), "schema_version")
    assert not (tmp_path / "r.md").exists()


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    _one_error_line(run_benchkit("report", str(missing)), str(missing))


# --------------------------------------------------------------------------- GPU results



def _gpu_results() -> list[Path]:
    """The tinyllama results measured by benchkit on an H100 and an H200 (committed)."""
    found = sorted(REPO.glob("results/nvidia-h*/*Z-tinyllama-??????.json"))
    if not found:
        pytest.skip("no committed GPU result of the tinyllama suite under results/")
    return found


def test_gpu_results_show_placement_bandwidth_and_stand_in(tmp_path: Path) -> None:
    """Real CUDA runs of a synthetic stand-in: device, buffers, share of peak, marks."""
    files = _gpu_results()
    _report(files[0], tmp_path / "gpu", "--format", "md", *map(str, files[1:]))
    text = (tmp_path / "gpu.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    tables = _tables(tokens)
    perf = next(t for t in tables if t[0][0] == "Configuration" and "Backend" in t[0])
    for row in perf[1:]:
        for cell in row[3:5]:                 # decode and prompt figures
            if "tok/s" in cell:
                assert "(synthetic stand-in)" in cell
    gpu_rows = [r for r in perf[1:] if r[0].startswith("all layers on NVIDIA")]
    assert gpu_rows and all(r[2].endswith("(100%)") and "×" in r[-1] for r in gpu_rows)
    # buffers per device, with the CUDA device among them
    devices = [r[0] for t in tables if t[0][0] == "Device" for r in t[1:]]
    assert any(d.startswith("CUDA") for d in devices)
    # achieved bandwidth as a share of the chip's peak, from the chip database
    bw = next(t for t in tables if "Share of peak" in t[0])
    shares = [r[-1] for r in bw[1:] if r[0].startswith("all layers on NVIDIA")]
    assert shares and all(s.endswith("%") for s in shares)
    # projections calibrated on the measured GPUs, the measured ones marked as such
    proj = next(t for t in tables if t[0][0] == "Chip" and "Status" in t[0])
    assert any(r[-1].startswith("measured (") for r in proj[1:])
    assert any(r[-1] == "not tested" for r in proj[1:])
    assert "Expected throughput by model size" in _headings(tokens, "h3")


# --------------------------------------------------------------------------- at a glance

ENGINES_RESULT = "results/nvidia-h200-v2/20261201T174653Z-engines-tinyllama-gpu-8b66de.json"


def _engines_result() -> Path:
    """Four engines on one H200, one run (committed): configurations that differ by engine."""
    path = REPO / ENGINES_RESULT
    if not path.is_file():
        pytest.skip(f"{ENGINES_RESULT} is not committed")
    return path


def _median(doc: dict, engine: str, test: str) -> float:
    case = next(c for c in doc["cases"] if c["engine"]["kind"] == engine and c["test"] == test)
    return statistics.median(i["tps"] for i in case["iterations"])


def test_configurations_are_named_by_what_differs(tmp_path: Path) -> None:
    """The four engines share every llama.cpp setting: each is named by its engine alone,
    the shared settings are stated once, as written (integers as integers)."""
    result = _engines_result()
    _report(result, tmp_path / "engines", "--format", "md")
    text = (tmp_path / "engines.md").read_text(encoding="utf-8")
    tables = _tables(MarkdownIt("commonmark").enable("table").parse(text))
    perf = next(t for t in tables if t[0][0] == "Configuration" and "Backend" in t[0])
    engines = list(dict.fromkeys(c["engine"]["kind"] for c in _doc(result)["cases"]))
    assert [r[0] for r in perf[1:]] == engines
    shared = next(r[1] for t in tables for r in t if r[0] == "Same for all")
    batch = _doc(result)["cases"][0]["engine"]["n_batch"]
    assert f"n_batch {batch}" in shared and "all layers on NVIDIA H200" in shared
    assert not re.search(r"(?<![\d.])\d+\.0(?![\d.])", shared + " ".join(r[2] for r in perf[1:]))
    # the chart's labels are the same short names
    svg = (tmp_path / "engines-throughput.svg").read_text(encoding="utf-8")
    labels = re.findall(r">([^<>]+)</text>", svg)
    assert set(engines) <= {label.strip() for label in labels}
    assert not any("n_batch" in label for label in labels)


@pytest.mark.browser
def test_first_screen_answers_how_fast_on_what_compared_with_what(tmp_path: Path) -> None:
    from browser import session

    result = _engines_result()
    doc = _doc(result)
    _report(result, tmp_path / "engines", "--format", "html")
    with session(1300, 900) as s:
        s.open(tmp_path / "engines.html")
        got = s.js("const box = document.getElementById('summary');"
                   "const r = box.getBoundingClientRect();"
                   "return {top: r.top, bottom: r.bottom, height: innerHeight, text: box.innerText,"
                   " wide: Array.from(document.querySelectorAll('.table-wrap'))"
                   "   .filter(w => w.scrollWidth > w.clientWidth + 1).length,"
                   " page: document.documentElement.scrollWidth"
                   "   - document.documentElement.clientWidth};")
        assert s.console_errors() == []
    assert 0 <= got["top"] and got["bottom"] <= got["height"], got     # all of it, unscrolled
    text = got["text"]
    best = max(_median(doc, e, "tg128") for e in ("llama-cpp-python", "llama-bench",
                                                 "llama-server", "openai"))
    assert f"{fmt_tps(best)} tok/s decode" in text                       # how fast
    assert "NVIDIA H200" in text and "tinyllama-1.1b" in text            # on what
    ratio = _median(doc, "llama-bench", "tg128") / _median(doc, "llama-cpp-python", "tg128")
    assert f"{ratio:.2f}×" in text and "vs llama-cpp-python" in text    # compared with what
    assert got["wide"] == 0 and got["page"] <= 0                         # tables fit at 1300 px
