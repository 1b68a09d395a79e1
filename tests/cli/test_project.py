"""`benchkit project` as a user runs it: tables, formats, sizes, validation, bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest
from markdown_it import MarkdownIt

from conftest import run_benchkit
from gpu_results import gpu_copy
from reference_chips import REFERENCE_ROWS


def md_table(text: str) -> list[list[str]]:
    """Rows of the first table in Markdown output, parsed by a real Markdown parser."""
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    rows, row, in_cell = [], None, False
    for tok in tokens:
        if tok.type == "tr_open":
            row = []
        elif tok.type in ("td_open", "th_open"):
            in_cell = True
        elif tok.type == "inline" and in_cell:
            row.append(tok.content)
            in_cell = False
        elif tok.type == "tr_close":
            rows.append(row)
        elif tok.type == "table_close":
            break
    return rows


def ok(*args: str, cwd=None) -> str:
    proc = run_benchkit("project", *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_bandwidth_table_in_the_reference_page_style(tmp_path):
    out = ok("--anchor", "m4max", "--tg", "198", "--method", "bandwidth", cwd=tmp_path)
    rows = md_table(out)
    assert rows[0] == ["Chip", "GPU cores", "Memory BW", "Est. decode tok/s",
                       "Est. prompt tok/s", "Status"]
    body = {(r[0], r[1]): r for r in rows[1:]}
    # Variants with the same figures share a row, as on the page: 35 configurations, 21 rows.
    assert len(body) == 21
    for name, low, high, bandwidth, est in REFERENCE_ROWS:
        # The row whose bandwidth matches the page; its cores lie inside the page's range.
        row = next(r for (chip, cores), r in body.items() if chip == name
                   and r[2] == f"{bandwidth} GB/s")
        first, _, last = row[1].partition("–")
        assert low <= int(first) and int(last or first) <= high, (name, row)
        if name not in ("M3 Max", "M4 Pro", "M4 Max"):     # the page spans other bandwidths there
            assert row[1] == f"{low}–{high}", (name, row)
        figure = int(row[3].lstrip("~"))
        assert abs(figure - est) <= 2, (name, row)
    assert body[("M4 Max", "40")][5] == "✅ Measured: 198 tok/s"
    assert body[("M4 Max", "32")][2] == "410 GB/s"
    assert body[("M1", "7–8")][5] == "Not tested"
    assert "tok/s" in out and "bandwidth" in out


def test_roofline_json_has_the_documented_fields(tmp_path):
    rows = json.loads(ok("--anchor", "m4max", "--tg", "198", "--pp", "1500", "--model-gb",
                         "0.669", "--layers", "22", "--format", "json", cwd=tmp_path))
    assert len(rows) == 35
    for row in rows:
        for key in ("chip", "name", "gpu_cores", "bandwidth_gbs", "tg_tps", "pp_tps", "tg_low",
                    "tg_high", "status", "fits", "measured_tg"):
            assert key in row
    m4max = next(r for r in rows if r["chip"] == "m4max")
    assert m4max["status"] == "measured" and m4max["tg_tps"] == pytest.approx(198, rel=0.02)
    assert m4max["pp_tps"] == pytest.approx(1500, rel=0.02)
    m5 = next(r for r in rows if r["chip"] == "m5")
    assert m5["pp_tps"] is None and m5["tg_tps"] > 0       # no compute figure for M5 yet


def test_no_prompt_figure_gives_null_prompt_in_json_and_csv(tmp_path):
    rows = json.loads(ok("--anchor", "h100", "--tg", "842", "--model-gb", "0.669",
                         "--format", "json", cwd=tmp_path))
    assert {r["chip"] for r in rows} >= {"h100", "h200", "rtx4090", "a100"}
    assert all(r["pp_tps"] is None for r in rows)
    table = list(csv.DictReader(io.StringIO(ok("--anchor", "h100", "--tg", "842", "--model-gb",
                                               "0.669", "--format", "csv", "--chips", "h200,l40s",
                                               cwd=tmp_path))))
    assert [r["chip"] for r in table] == ["h200", "l40s"] and table[0]["pp_tps"] == ""
    assert float(table[0]["tg_low"]) < float(table[0]["tg_tps"]) < float(table[0]["tg_high"])


def test_size_table(tmp_path):
    out = ok("--anchor", "m4max", "--tg", "198", "--model-gb", "0.669", "--sizes", "1,3,7,13,70",
             "--quant", "Q4_K_M", cwd=tmp_path)
    rows = md_table(out)
    assert [r[0] for r in rows[1:]] == ["~1B params", "~3B params", "~7B params", "~13B params",
                                       "~70B params"]
    assert rows[-1][5] == "With ≥ 64 GB"           # 70B Q4_K_M needs the 64 or 128 GB M4 Max
    m1 = md_table(ok("--anchor", "m4max", "--tg", "198", "--model-gb", "0.669", "--sizes", "7,70",
                     "--chip", "m1", cwd=tmp_path))
    assert m1[1][5] == "Yes" and m1[2][5].startswith("No") and m1[2][3] == "—"


def test_anchor_from_results_folder_and_validate(smollm2_result, tmp_path):
    results = tmp_path / "results"
    gpu_copy(smollm2_result, results / "a.json", chip_id="m4max", name="Apple M4 Max",
             gpu_cores=40, backend="metal", started_at="2026-02-01T00:00:00Z")
    gpu_copy(smollm2_result, results / "community" / "m1" / "b.json", chip_id="m1",
             name="Apple M1", gpu_cores=8, backend="metal", started_at="2026-01-01T00:00:00Z")
    out = ok("--anchor", "m4max", cwd=tmp_path)
    assert "from results/a.json" in out and "mean of 3 iterations" in out
    body = {(r[0], r[1]): r for r in md_table(out)[1:]}
    assert body[("M1", "8")][5].startswith("✅ Measured") and body[("M4 Max", "40")][5].startswith("✅")
    assert body[("M1", "7")][5] == "Not tested"
    # --from one file: only that file's measurement, so M1 is not marked measured.
    rows = json.loads(ok("--from", str(results / "a.json"), "--format", "json", cwd=tmp_path))
    assert next(r for r in rows if r["chip"] == "m1")["status"] == "not tested"
    # Validation reads results/ recursively (community/ included): each chip from the other.
    check = json.loads(ok("--validate", "--format", "json", cwd=tmp_path))
    assert {(p["anchor"], p["chip"]) for p in check["pairs"]} == {("m4max", "m1"), ("m1", "m4max")}
    text = ok("--validate", cwd=tmp_path)
    assert "MAPE" in text and md_table(text)[0][0] == "Anchor"


@pytest.mark.parametrize("args,names", [
    (["--anchor", "m4maxx", "--tg", "198"], ["--anchor", "m4max"]),
    (["--anchor", "m4max", "--tg", "-5"], ["--tg"]),
    (["--anchor", "m4max", "--tg", "0", "--method", "bandwidth"], ["--tg"]),
    (["--anchor", "m4max", "--tg", "100", "--model-gb", "2000"], ["--model-gb", "does not fit"]),
    (["--anchor", "m4max", "--tg", "198"], ["--model-gb"]),
    (["--anchor", "m1"], ["--tg", "--from", "results/"]),
    (["--anchor", "m4max", "--tg", "100", "--model-gb", "1", "--sizes", "1,x"], ["--sizes"]),
    (["--anchor", "m4max", "--tg", "100", "--model-gb", "1", "--sizes", "7", "--quant", "Q9"],
     ["--quant", "Q9"]),
    (["--anchor", "m4max", "--tg", "100", "--model-gb", "1", "--chips", "m1,zz"], ["--chips", "zz"]),
    # an option of the other table is refused, not ignored
    (["--anchor", "m4max", "--tg", "100", "--model-gb", "1", "--chip", "m1"],
     ["--chip", "--sizes", "--chips m1"]),
    (["--anchor", "m4max", "--tg", "100", "--model-gb", "1", "--sizes", "7", "--chips", "m1"],
     ["--chips", "--sizes"]),
    (["--validate", "--depth", "4096"], ["--depth", "--validate"]),
])
def test_bad_input_is_one_error_line(tmp_path, args, names):
    proc = run_benchkit("project", *args, cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    for name in names:
        assert name in lines[0]


def test_files_that_are_not_usable_results(smollm2_result, tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"name": "llama-bench output"}', encoding="utf-8")
    for path, names in ((other, [str(other), "format", "not a benchkit result"]),
                        (smollm2_result, [str(smollm2_result), "no GPU measurement"]),
                        (tmp_path / "missing.json", ["missing.json", "no such"])):
        proc = run_benchkit("project", "--from", str(path), cwd=tmp_path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
        assert all(n in lines[0] for n in names), lines[0]


def test_list_chips(tmp_path):
    rows = md_table(ok("--list-chips", cwd=tmp_path))
    ids = [r[0] for r in rows[1:]]
    assert "m4max-32c" in ids and "h200" in ids and "mi300x" in ids
