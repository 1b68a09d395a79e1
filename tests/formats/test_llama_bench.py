"""`benchkit import` of llama-bench's json, jsonl, csv and sql output, and the writers of
llama-bench's formats, on output of the real llama-bench made here (and the real H200
llama-bench file committed under reports/nvidia/).

llama-bench prints one format on stdout and, with -oe, another on stderr from the same
measurements: importing the json and writing md / csv / sql / jsonl back must give what
llama-bench itself printed, byte for byte.
"""

from __future__ import annotations

from paths import REPO, DATA as TEST_DATA

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from benchkit.formats import llama_bench as lbf
from benchkit.formats.llama_bench_import import documents
from benchkit.results.io import read_result
from benchkit.community.scrub import scrub_home
from conftest import run_benchkit

ROOT = REPO
DATA = TEST_DATA / "llama-bench"
# llama-bench -p 512 -n 128 -ngl 99 -r 5 -o json on an NVIDIA H200 (scripts/cuda_evidence.sh)
H200 = ROOT / "reports" / "nvidia" / "llama-bench-h200.json"


@pytest.fixture(scope="module")
def outputs(llama_tools: dict[str, Path], smollm2_model: Path,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real llama-bench runs (pp16 and tg8, 3 repetitions): json on stdout with each other
    format on stderr (json-md, json-csv, ...), and the other formats by themselves."""
    tmp = tmp_path_factory.mktemp("llama-bench")
    files: dict[str, Path] = {}
    for other in ("md", "csv", "sql", "jsonl"):
        proc = subprocess.run(
            [str(llama_tools["llama-bench"]), "-m", str(smollm2_model), "-p", "16", "-n", "8",
             "-r", "3", "-t", "1", "-o", "json", "-oe", other],
            capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        files[f"json-{other}"] = tmp / f"pair-{other}.json"
        files[f"json-{other}"].write_text(proc.stdout, encoding="utf-8")
        files[other] = tmp / f"pair.{other}"
        files[other].write_text(proc.stderr, encoding="utf-8")
    files["json"] = files["json-md"]
    return files


def _import(tmp_path: Path, *files: Path) -> list[dict]:
    proc = run_benchkit("import", *map(str, files), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.split()
    assert len(paths) >= len(files)
    return [read_result(p) for p in paths]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "sql"])
def test_import_each_format(fmt: str, outputs: dict[str, Path], smollm2_model: Path,
                            tmp_path: Path) -> None:
    source = outputs[fmt]
    [doc] = _import(tmp_path, source)
    rows = [json.loads(ln) for ln in outputs["jsonl"].read_text().splitlines()] \
        if fmt == "jsonl" else json.loads(outputs[f"json-{fmt}" if fmt != "json" else "json"]
                                          .read_text())
    assert doc["suite"]["imported"] is True
    assert doc["suite"]["source"] == {"tool": "llama-bench", "file": source.name,
                                      "sha256": _sha(source), "format": fmt, "tests": 2}
    assert doc["environment"]["cpu"]["model"] == rows[0]["cpu_info"]
    assert doc["environment"]["backend"] == "cpu" and doc["environment"]["chip"]["kind"] == "cpu"
    assert [c["test"] for c in doc["cases"]] == ["pp16", "tg8"]
    for case, row in zip(doc["cases"], rows):
        info = case["engine_info"]
        assert case["engine"]["kind"] == "llama-bench" and case["status"] == "ok"
        assert info["imported"] is True and info["source_sha256"] == _sha(source)
        assert info["source_format"] == fmt and info["build_commit"] == row["build_commit"]
        assert info["backends"] == "CPU" and case["engine"]["n_threads"] == 1
        assert case["model"]["sha256"] == _sha(smollm2_model)   # the file llama-bench ran
        assert case["model"]["quantization"] == "Q4_1"
        if fmt in ("json", "jsonl"):
            assert [it["tool_ns"] for it in case["iterations"]] == row["samples_ns"]
            assert {it["clock"] for it in case["iterations"]} == {"tool"}
            assert case["summary"]["n"] == 3
            assert case["summary"]["tps_mean"] == pytest.approx(row["avg_ts"], rel=1e-6)
        else:
            assert case["iterations"] == [] and case["summary"]["n"] == 0
            assert case["summary"]["tps_mean"] == pytest.approx(row["avg_ts"], abs=1e-6)
            assert case["summary"]["tps_stdev"] == pytest.approx(row["stddev_ts"], abs=1e-6)
            assert "not its repetitions" in case["warnings"][0]


@pytest.mark.parametrize("fmt", ["md", "csv", "sql", "jsonl", "json"])
def test_writers_print_what_llama_bench_printed(fmt: str, outputs: dict[str, Path],
                                                smollm2_model: Path) -> None:
    pair = outputs[f"json-{fmt}" if fmt != "json" else "json"]
    [doc] = documents(pair)
    expected = (outputs[fmt] if fmt != "json" else pair).read_text(encoding="utf-8")
    expected = expected.replace(str(smollm2_model), scrub_home(str(smollm2_model)))
    assert lbf.write(doc, fmt) == expected


def test_written_formats_import_back(outputs: dict[str, Path], tmp_path: Path) -> None:
    [original] = documents(outputs["json"])
    for fmt in ("json", "jsonl", "csv", "sql"):
        path = tmp_path / f"again.{fmt}"
        path.write_text(lbf.write(original, f"llama-bench-{fmt}"), encoding="utf-8")
        [doc] = documents(path)
        assert [c["test"] for c in doc["cases"]] == ["pp16", "tg8"]
        for a, b in zip(doc["cases"], original["cases"]):
            assert a["summary"]["tps_mean"] == pytest.approx(b["summary"]["tps_mean"], abs=1e-6)
            assert a["engine"] == b["engine"]


def test_benchkit_run_as_llama_bench_output(smollm2_result: Path, tmp_path: Path) -> None:
    doc = read_result(smollm2_result)
    token_cases = [c for c in doc["cases"] if c["workload"]["kind"] in ("pp", "tg")]
    for fmt in ("json", "csv", "sql", "jsonl"):
        text = lbf.write(doc, fmt)
        path = tmp_path / f"run.{fmt}"
        path.write_text(text, encoding="utf-8")
        [back] = documents(path)
        assert [c["test"] for c in back["cases"]] == [c["test"] for c in token_cases]
        for a, b in zip(back["cases"], token_cases):
            assert a["summary"]["tps_mean"] == pytest.approx(b["summary"]["tps_mean"], rel=1e-5)
    md = lbf.write(doc, "md").splitlines()
    assert md[0].split("|")[1:-1][-2:] == ["            test ", "                  t/s "]
    assert len(md) == 2 + len(token_cases) + 2


def test_report_compare_project_take_imports(outputs: dict[str, Path], tmp_path: Path) -> None:
    proc = run_benchkit("import", str(outputs["json"]), str(outputs["sql"]), str(H200),
                        "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    cpu_json, cpu_sql, gpu = proc.stdout.split()
    report = run_benchkit("report", cpu_json, cpu_sql, "--format", "md",
                          "-o", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "llama-bench" in text and "pp16" in text and "tg8" in text
    compare = run_benchkit("compare", cpu_json, cpu_sql)
    assert compare.returncode == 0, compare.stderr
    assert "| pp16 |" in compare.stdout and "| tg8 |" in compare.stdout
    project = run_benchkit("project", "--from", gpu)
    assert project.returncode == 0, project.stderr
    assert "Anchor: h200: decode (tg128)" in project.stdout


def test_committed_examples() -> None:
    """The example files of real llama-bench output (SmolLM2 on this CPU, pp16 and tg4, 3
    repetitions; json with -oe sql, jsonl with -oe csv): each pair is one run, so the
    sample-less format's figures are the other's samples summarised by llama-bench."""
    for with_samples, without in (("json", "sql"), ("jsonl", "csv")):
        [a] = documents(DATA / f"smollm2-cpu.{with_samples}")
        [b] = documents(DATA / f"smollm2-cpu.{without}")
        assert [c["test"] for c in a["cases"]] == ["pp16", "tg4"]
        assert [c["test"] for c in b["cases"]] == ["pp16", "tg4"]
        for x, y in zip(a["cases"], b["cases"]):
            assert x["summary"]["n"] == 3 and y["summary"]["n"] == 0
            assert x["summary"]["tps_mean"] == pytest.approx(y["summary"]["tps_mean"], abs=1e-6)
            assert x["summary"]["tps_stdev"] == pytest.approx(y["summary"]["tps_stdev"], abs=1e-6)
            assert x["engine"] == y["engine"]
            assert x["model"]["name"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
        assert lbf.write(b, without) == (DATA / f"smollm2-cpu.{without}").read_text()
        assert lbf.write(a, with_samples) == (DATA / f"smollm2-cpu.{with_samples}").read_text()


def test_model_option_identifies_the_model(smollm2_model: Path, tmp_path: Path) -> None:
    example = DATA / "smollm2-cpu.json"            # model_filename is a bare file name
    [doc] = _import(tmp_path, example)
    assert doc["cases"][0]["model"]["sha256"] is None
    proc = run_benchkit("import", str(example), "--model", str(smollm2_model),
                        "-o", str(tmp_path / "with-model"))
    assert proc.returncode == 0, proc.stderr
    model = read_result(proc.stdout.split()[0])["cases"][0]["model"]
    assert model["sha256"] == _sha(smollm2_model)
    assert model["size_bytes"] == smollm2_model.stat().st_size and model["n_layers"] == 30
    wrong = run_benchkit("import", str(H200), "--model", str(smollm2_model),
                         "-o", str(tmp_path / "wrong"))
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert wrong.stderr.strip() == (f"error: {smollm2_model} [--model]: matches no imported "
                                    "test (its parameter count differs from every "
                                    "model_n_params)")
    assert not (tmp_path / "wrong").exists()


def test_h200_file(tmp_path: Path) -> None:
    [doc] = _import(tmp_path, H200)
    env = doc["environment"]
    assert env["chip"] == {"kind": "nvidia", "name": "NVIDIA H200", "id": "h200",
                           "gpu_cores": None}
    assert env["backend"] == "cuda" and env["gpus"][0]["name"] == "NVIDIA H200"
    rows = json.loads(H200.read_text())
    for case, row in zip(doc["cases"], rows):
        assert case["placement"]["device_kind"] == "gpu"
        assert case["engine"]["n_gpu_layers"] == 99
        assert case["model"]["quantization"] == {"llama 1B Q4_K - Medium": "Q4_K_M",
                                                 "llama 1B F16": "F16"}[row["model_type"]]
        assert case["summary"]["n"] == len(row["samples_ns"])
        assert case["test"] == lbf.test_name(row["n_prompt"], row["n_gen"], row["n_depth"])


def test_one_file_of_two_machines_is_two_results(outputs: dict[str, Path], tmp_path: Path) -> None:
    [gpu] = documents(H200)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(outputs["jsonl"].read_text() + lbf.write(gpu, "jsonl"), encoding="utf-8")
    docs = _import(tmp_path, mixed)
    assert sorted(d["environment"]["backend"] for d in docs) == ["cpu", "cuda"]
    again = run_benchkit("import", str(mixed), "-o", str(tmp_path / "out"))
    assert sorted(again.stdout.split()) == sorted(
        str(Path(p)) for p in run_benchkit("import", str(mixed), "-o",
                                           str(tmp_path / "out")).stdout.split())
    assert len(list((tmp_path / "out").glob("*.json"))) == 2      # re-import replaces


def _malformed(outputs: dict[str, Path], tmp_path: Path) -> dict[str, tuple[Path, str]]:
    real_json = outputs["json"].read_text()
    real_csv = outputs["csv"].read_text().splitlines()
    cases = {
        "truncated json": (real_json[: len(real_json) // 2], r"not valid JSON \(.*truncated\?\)"),
        "truncated jsonl": (outputs["jsonl"].read_text()[:-40], r":2: not valid JSON"),
        "short csv row": ("\n".join([real_csv[0], real_csv[1].rsplit(",", 1)[0]]) + "\n",
                          r":2: 41 values for 42 columns"),
        "other columns": ("name,tokens_per_second,n_gen\nx,1.0,3\n",
                          r":2 \[n_prompt\]: no n_prompt field"),
        "bad value": (real_json.replace('"n_gen": 0', '"n_gen": "lots"', 1),
                      r"\[\[0\]\.n_gen\]: malformed value 'lots'"),
        "empty": ("", r"empty file"),
        "markdown": (outputs["md"].read_text(), r"a Markdown table"),
        "sql that attaches": (outputs["sql"].read_text() +
                              "ATTACH DATABASE 'x.db' AS x;\n", r"not llama-bench's SQL"),
        "no tests": ("[]\n", r"no llama-bench tests in this json file"),
    }
    out = {}
    for i, (name, (text, pattern)) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.txt"
        path.write_text(text, encoding="utf-8")
        out[name] = (path, pattern)
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)) * 4)
    out["binary"] = (binary, "binary data")
    return out


def test_malformed_files_are_one_line_naming_the_file(outputs: dict[str, Path],
                                                      tmp_path: Path) -> None:
    import re

    for name, (path, pattern) in _malformed(outputs, tmp_path).items():
        proc = run_benchkit("import", str(outputs["json"]), str(path), "-o",
                            str(tmp_path / name.replace(" ", "-")))
        assert proc.returncode == 2, (name, proc.stderr)
        assert "Traceback" not in proc.stderr, name
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}"), (name, lines)
        assert re.search(pattern, lines[0]), (name, lines[0])
        assert not (tmp_path / name.replace(" ", "-")).exists(), name    # nothing written
    assert not Path("x.db").exists()


def test_files_that_cannot_be_read_in_bounds_are_refused_unread(tmp_path: Path) -> None:
    """A file one byte over the limit (sparse: its size is all there is to read) and a
    FIFO (whose read would wait for a writer forever) are each one line naming the file
    and what it is, before anything is read."""
    import os

    from benchkit.core.safeio import MAX_IMPORT_BYTES

    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(MAX_IMPORT_BYTES + 1)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for path, says in ((big, f"llama-bench file is too large: {MAX_IMPORT_BYTES + 1:,} "
                             f"bytes (at most {MAX_IMPORT_BYTES:,})"),
                       (fifo, "llama-bench file is a FIFO, not a regular file")):
        proc = run_benchkit("import", str(path), "-o", str(tmp_path / "out"), timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip() == f"error: {path}: {says}"
    assert not (tmp_path / "out").exists()


def test_split_settings_cross_llama_benchs_files(tmp_path: Path) -> None:
    """llama-bench's split_mode, main_gpu, tensor_split and devices fields: a recorded row
    (tests/data, a CPU run) with them as a two-GPU row-split run prints them, imported as
    benchkit's settings and written back in llama-bench's spelling; a malformed split is
    one error line naming the field."""
    rows = [json.loads(line) for line in
            (TEST_DATA / "llama-bench" / "smollm2-cpu.jsonl").read_text().splitlines()]
    for row in rows:
        row.update(split_mode="row", main_gpu=1, tensor_split="3.00/1.00",
                   devices="CUDA0/CUDA1")
    src = tmp_path / "two-gpus.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (doc,) = _import(tmp_path, src)
    engine = doc["cases"][0]["engine"]
    assert (engine["split_mode"], engine["main_gpu"]) == ("row", 1)
    assert engine["tensor_split"] == [3.0, 1.0] and engine["devices"] == ["CUDA0", "CUDA1"]
    for case in doc["cases"]:            # written as benchkit's own case would be
        case["engine_info"].pop("llama_bench_row")
    written = lbf.rows_of(doc)[0]
    assert (written["split_mode"], written["main_gpu"], written["tensor_split"],
            written["devices"]) == ("row", 1, "3.00/1.00", "CUDA0/CUDA1")
    rows[0]["tensor_split"] = "3.00/x"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_benchkit("import", str(src), "-o", str(tmp_path / "bad"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "tensor_split" in line and "malformed value '3.00/x'" in line
