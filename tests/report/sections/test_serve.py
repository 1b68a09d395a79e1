"""The report's serve section beyond the throughput table, on the committed serve-realism
run (suites/serve-realism-smollm2.yaml on a 2-core CPU, real llama-server): per level the
prefix cache by turn, the server's own metrics, draft acceptance and the speculative
speedup; every SLO search with each level tried; Markdown and HTML (in Chromium). And a
server without /metrics, run for real through `benchkit run`, shown as "no metrics"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from benchkit.core.units import fmt_ms, fmt_pct, fmt_tps
from conftest import run_benchkit
from http_fakes import OpenAIFake
from markdown_tables import tables as _tables
from paths import REPO

RESULT = REPO / "results" / "20261206T232909Z-serve-realism-smollm2-480772.json"
SERVER_HEAD = ["Level", "Cache hit rate", "Hit rate: first / later turns",
               "TTFT p50: first / later turns", "KV cache use", "Running, peak",
               "Waiting, peak", "Prompt tokens computed", "Prompt tokens from cache",
               "Tokens generated", "Draft acceptance", "Speedup vs no draft"]
SEARCH_HEAD = ["#", "Load", "Verdict", "Why", "Requests ok", "TTFT p99", "TPOT p99",
               "Error rate", "Output tok/s"]


def _cases() -> list[dict[str, Any]]:
    return json.loads(RESULT.read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve-report") / "r"
    proc = run_benchkit("report", str(RESULT), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def _md_tables(path: Path, head: list[str]) -> list[list[list[str]]]:
    tokens = MarkdownIt("commonmark").enable("table").parse(
        path.with_suffix(".md").read_text(encoding="utf-8"))
    return [t for t in _tables(tokens) if t[0] == head]


def test_server_table_has_every_level_with_its_own_figures(reports: Path) -> None:
    tables = _md_tables(reports, SERVER_HEAD)
    rows = {}
    for t in tables:
        for r in t[1:]:
            rows.setdefault(r[0], []).append(r)
    levels = [c for c in _cases() if not c["workload"].get("search")]
    assert sum(len(v) for v in rows.values()) == len(levels)
    for case in levels:
        s = case["summary"]
        drafted = bool(case["engine"].get("draft_model"))
        (row,) = [r for r in rows[case["test"]] if (r[10] != "—") == drafted]
        assert row[1] == fmt_pct(s["cache_hit_rate"])
        assert row[7] == f"{s['server_prompt_tokens']:,.0f}"
        assert row[8] == f"{s['server_cached_prompt_tokens']:,.0f}"
        assert row[9] == f"{s['server_generated_tokens']:,.0f}"
        assert row[5] == f"{s['server_requests_running_max']:,.0f}"
        assert row[4].startswith(fmt_pct(s["server_kv_cache_usage_max"]) + " peak")
        if case["workload"].get("sessions"):
            assert row[2] == (f"{fmt_pct(s['cache_hit_rate_first_turn'])} / "
                              f"{fmt_pct(s['cache_hit_rate_later_turns'])}")
            assert row[3] == (f"{fmt_ms(s['ttft_p50_first_turn_s'])} / "
                              f"{fmt_ms(s['ttft_p50_later_turns_s'])}")
        if drafted:
            assert row[10] == fmt_pct(s["draft_acceptance"])
        if s.get("speculative_speedup") is not None:
            base = s["speculative_baseline"]["output_tps"]
            assert row[11] == (f"{s['speculative_speedup']:.2f}× ({fmt_tps(s['output_tps'])}"
                               f" vs {fmt_tps(base)} tok/s)")
    assert any(r[11] != "—" for rs in rows.values() for r in rs)


def test_search_shows_every_level_tried_and_the_answer(reports: Path) -> None:
    text = reports.with_suffix(".md").read_text(encoding="utf-8")
    searches = [c for c in _cases() if c["workload"].get("search")]
    tables = _md_tables(reports, SEARCH_HEAD)
    assert len(tables) == len(searches) >= 1
    for case, table in zip(searches, tables):
        s = case["summary"]
        assert len(table) - 1 == len(s["search"]) == s["search_levels"]
        for k, (row, tried) in enumerate(zip(table[1:], s["search"]), start=1):
            assert row[0] == str(k)
            assert row[1] == f"concurrency {tried['concurrency']:g}"
            assert row[2] == ("pass" if tried["passed"] else "fail")
            assert row[3] == tried["why"]
            assert row[5] == fmt_ms(tried["ttft_p99_s"])
        answer = (f"concurrency {s['slo_max_load']:g}" if s["slo_max_load"] is not None
                  else "none: " + s["slo_max_load_note"])
        assert f"**{answer}**" in text
    assert reports.with_name("r-serve-search-0.svg").is_file()


@pytest.mark.browser
def test_html_serve_section_in_chromium(reports: Path) -> None:
    from browser import PHONE, distinct_colours, open_page

    js = {"server": "return Array.from(document.querySelectorAll('table.serve-server tr'))"
                    ".length;",
          "search": "return Array.from(document.querySelectorAll('table.serve-search tr'))"
                    ".map(r => r.className);",
          "answer": "return Array.from(document.querySelectorAll('.slo-answer'))"
                    ".map(e => e.textContent);",
          "figures": "return document.querySelectorAll('figure[id^=chart-serve-search]')"
                     ".length;"}
    page = open_page(reports.with_suffix(".html"), evaluate=js, full_page=True)
    assert page.console_errors == []
    searches = [c for c in _cases() if c["workload"].get("search")]
    assert sum(h.startswith("SLO search: ") for h in page.heading_texts) == len(searches)
    levels = [c for c in _cases() if not c["workload"].get("search")]
    groups = len({(c["engine"].get("draft_model"), bool(c["workload"].get("sessions")))
                  for c in levels})
    assert page.extra["server"] == len(levels) + groups          # rows + one header each
    tried = [lv for c in searches for lv in c["summary"]["search"]]
    assert [k for k in page.extra["search"] if k] == [
        "slo-pass" if lv["passed"] else "slo-fail" for lv in tried]
    assert len(page.extra["answer"]) == len(searches)
    assert page.extra["figures"] == len(searches)
    assert distinct_colours(page.screenshot_png) > 8
    phone = open_page(reports.with_suffix(".html"), width=PHONE[0], height=PHONE[1])
    assert not phone.overflows_horizontally


def test_server_without_metrics_says_so(tmp_path: Path, smollm2_model: Path) -> None:
    """A level against a server that serves no /metrics, run through `benchkit run`: its
    server figures say "no metrics" and the reason is under the table."""
    with OpenAIFake(smollm2_model.name) as fake:
        suite = tmp_path / "s.yaml"
        suite.write_text(f"name: no-metrics\nmodels: [{{path: {smollm2_model}}}]\n"
                         f'engines: [{{kind: openai, url: "{fake.url}/v1"}}]\n'
                         "workloads:\n  - serve: {concurrency: 1, requests: 2, prompt_tokens: "
                         "4, max_tokens: 3}\nwarmup: 0\n")
        proc = run_benchkit("run", str(suite), "-o", str(tmp_path / "res"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    result = next((tmp_path / "res").glob("*.json"))
    rep = run_benchkit("report", str(result), "-o", str(tmp_path / "r"), "--format", "md")
    assert rep.returncode == 0, rep.stderr
    (table,) = _md_tables(tmp_path / "r", SERVER_HEAD)
    assert table[1][0] == "serve-c1"
    assert table[1][4:10] == ["no metrics"] * 6 and table[1][1] == "not reported"
    text = (tmp_path / "r.md").read_text(encoding="utf-8").replace("\u200b", "")  # no autolink
    assert (f"- serve-c1: no metrics: {fake.url}/metrics: HTTP 404; the server serves no "
            "metrics there") in text
