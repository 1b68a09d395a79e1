"""The server's own figures in a serve level: Prometheus /metrics before and after it, and
speculative decoding's acceptance, on the real llama-server that benchkit starts (SmolLM2,
one thread, loopback), and on small loopback servers that serve no or broken metrics.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from benchkit.engines.base import Endpoint, ModelFile, Plan
from benchkit.engines.llama_cpp.server import LlamaServer, Options
from benchkit.workloads.serve import metrics as server_metrics
from benchkit.workloads.serve import workload as serve

from http_fakes import OpenAIFake

CPU = {"n_gpu_layers": 0, "n_threads": 1}


def _measure(text: str, session: Any) -> tuple[dict[str, Any], list[dict]]:
    import yaml

    (w,) = serve.parse({"serve": yaml.safe_load(text)})
    its = [i.to_dict() for i in w.measure(session, Plan(warmup=1, iterations=0))]
    return w.summary(its), its


def _model(path: Path) -> ModelFile:
    return ModelFile(path=str(path), label="suite.yaml:3 [models.0.path]", name=path.name)


@pytest.fixture(scope="module")
def q8_target(smollm2_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 as Q8_0, made from the shipped Q4_1 file by llama.cpp's own quantizer: the
    Q4_1 file drafts for it (same vocabulary, slightly different weights)."""
    import llama_cpp

    out = tmp_path_factory.mktemp("q8") / "smollm2-q8_0.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(str(smollm2_model).encode(), str(out).encode(),
                                        ctypes.byref(params))
    assert rc == 0 and out.stat().st_size > smollm2_model.stat().st_size
    return out


@pytest.fixture(scope="module")
def drafted(q8_target: Path, smollm2_model: Path) -> Iterator[Any]:
    session = LlamaServer(Options(**CPU, draft_model=str(smollm2_model), draft_max=4,
                                  draft_min=1, draft_p_min=0.5,
                                  args=["-np", "1"])).open(_model(q8_target))
    try:
        yield session
    finally:
        session.close()


def test_level_reads_the_server_metrics(drafted: Any) -> None:
    """benchkit starts llama-server with --metrics: the level's counters, scraped after
    the warmups and after the level, are exactly the level's requests' own figures."""
    summary, its = _measure("{concurrency: 1, requests: 2, prompt_tokens: 24, max_tokens: 12}",
                            drafted)
    assert "--metrics" in drafted.facts()["argv"]
    assert summary["server_prompt_tokens"] == sum(it["prompt_n"] for it in its)
    assert summary["server_generated_tokens"] == summary["output_tokens"]
    assert summary["server_requests_running"] == 0
    # Two short random prompts may draw no proposal at p_min 0.5: then the level has no
    # draft figures of its own, and the server's counter must have stayed at zero.
    assert summary["server_draft_tokens"] == summary.get("draft_tokens", 0)
    assert "server_metrics" in its[0] and not any("server_metrics" in it for it in its[1:])


def test_draft_model_acceptance(drafted: Any) -> None:
    """The Q4_1 file drafting for its Q8_0 requantization: tokens are drafted, most but
    not necessarily all accepted, as the server counts them."""
    summary, its = _measure("{concurrency: 1, requests: 2, prompt_tokens: 16, max_tokens: 24}",
                            drafted)
    facts = drafted.facts()
    assert facts["draft_model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "-md" in facts["argv"] and "--spec-draft-n-max" in facts["argv"]
    assert summary["draft_tokens"] > 0
    assert 0 < summary["draft_acceptance"] <= 1
    assert summary["draft_acceptance"] == pytest.approx(
        sum(it.get("draft_accepted", 0) for it in its) / sum(it.get("draft_n", 0) for it in its))


class _Garbage(OpenAIFake):
    def route(self, h: Any, method: str, path: str, body: Any) -> None:
        if path == "/metrics":
            return h.send_json({"not": "prometheus"})
        return super().route(h, method, path, body)


@pytest.mark.parametrize("fake, note", [
    (OpenAIFake, "HTTP 404; the server serves no metrics there"),
    (_Garbage, "answered no Prometheus figure benchkit knows (llama-server, vLLM, SGLang)")])
def test_server_without_metrics_says_so(fake: type, note: str) -> None:
    with fake("m") as f:
        session = SimpleNamespace(endpoint=Endpoint(f.url, "openai", "m", f.url + "/v1"))
        summary, _ = _measure("{concurrency: 1, requests: 2, prompt_tokens: 4, max_tokens: 3}",
                              session)
    assert summary["requests_ok"] == 2
    assert summary["server_metrics_note"] == f"{f.url}/metrics: {note}"


def test_prometheus_text_parsing() -> None:
    text = ("# HELP vllm:num_requests_running x\nvllm:num_requests_running{model=\"a\"} 3\n"
            "vllm:num_requests_running{model=\"b\"} 1\nvllm:prefix_cache_hits_total 40\n"
            "vllm:prefix_cache_queries_total 100\nbroken line\nx NaN\n")
    before = server_metrics.parse(text.replace("40", "10").replace("100", "20"))
    after = server_metrics.parse(text)
    assert after["vllm:num_requests_running"] == 4 and "x" not in after
    figures = server_metrics.level_figures(before, after)
    assert figures["server_requests_running"] == 4
    assert figures["server_prefix_cache_hit_rate"] == 30 / 80


def test_draft_of_another_vocabulary_is_refused_in_one_line(q8_target: Path,
                                                             tmp_path: Path) -> None:
    """A reduced SmolLM2 stand-in with 2,048 tokens (benchkit's synthetic models) as the
    draft: llama-server would start with it; benchkit refuses it before starting."""
    from benchkit.core.errors import BenchkitError
    from benchkit.models import synth

    other = synth.synthesize("smollm2-135m", "Q4_1", output=tmp_path / "v2048.gguf",
                             progress=False, reduce={"n_layers": 2, "n_vocab": 2048}).path
    with pytest.raises(BenchkitError) as err:
        LlamaServer(Options(**CPU, draft_model=str(other))).open(_model(q8_target))
    assert str(err.value) == (
        "[engine.draft_model]: draft_model v2048.gguf has a vocabulary of 2,048 tokens, the "
        "model smollm2-q8_0.gguf 49,152: speculative decoding needs the same vocabulary; "
        "refused")


def test_speculative_speedup_against_the_same_server_without_its_draft(drafted: Any) -> None:
    """A drafted level runs again, on the same requests, against a twin of the server
    without the draft (started beside it and stopped after): the speedup is the drafted
    level's output tok/s over the twin's."""
    import httpx

    summary, its = _measure("{concurrency: 1, requests: 2, prompt_tokens: 16, max_tokens: 16}",
                            drafted)
    base = summary["speculative_baseline"]
    assert base["requests_ok"] == 2 and base["output_tokens"] == summary["output_tokens"]
    assert base["prompt_seed"] == summary["prompt_seed"]      # the same requests
    assert "-md" not in base["argv"] and "--metrics" in base["argv"]
    assert "-md" in drafted.facts()["argv"]
    assert summary["speculative_speedup"] == pytest.approx(
        summary["output_tps"] / base["output_tps"])
    assert "speculative_baseline" in its[0] and "speculative_baseline_note" not in summary
    port = base["argv"][base["argv"].index("--port") + 1]
    with pytest.raises(httpx.HTTPError):      # the twin was stopped
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2, trust_env=False)


def test_speculative_baseline_can_be_skipped(drafted: Any) -> None:
    # pinned prompts and 32 tokens: the draft proposes only what it is confident of, and
    # 8 tokens of a random prompt could see no proposal at all
    summary, _ = _measure("{concurrency: 1, requests: 1, prompt_tokens: 8, max_tokens: 32, "
                          "seed: 11, speculative_baseline: false}", drafted)
    assert summary["draft_tokens"] > 0 and "speculative_speedup" not in summary
    assert summary["speculative_baseline_note"].startswith("no speedup: this level did not "
                                                           "run without the draft")


def test_sampler_sees_the_server_busy_during_a_request(drafted: Any) -> None:
    """The sampler scrapes /metrics and /slots in a thread: a sample taken while a
    request is generating counts it running, and the KV cache holds its tokens."""
    import httpx

    url = server_metrics.metrics_url(drafted.endpoint)
    sampler = server_metrics.Sampler(url, period_s=0.05).start()
    body = {"prompt": "Once upon a time", "n_predict": 400, "ignore_eos": True,
            "stream": True, "cache_prompt": False}
    with httpx.stream("POST", drafted.endpoint.base_url + "/completion", json=body,
                      timeout=120, trust_env=False) as resp:
        lines = resp.iter_lines()
        next(line for line in lines if line.startswith("data:"))     # generating now
        seen = len(sampler.samples)
        while len(sampler.samples) < seen + 2:                         # two samples later
            next(lines)
        figures = sampler.finish()
    assert figures["server_requests_running_max"] >= 1
    assert 0 < figures["server_kv_cache_usage_max"] <= 1
    assert figures["server_kv_cache_source"] == server_metrics.SLOTS_SOURCE
    assert figures["server_samples"] == len(sampler.samples) >= 3
    assert "server_requests_deferred_max" in figures


def test_slots_kv_usage_reads_only_slots() -> None:
    assert server_metrics.slots_kv_usage([{"n_ctx": 100, "n_prompt_tokens": 30},
                                          {"n_ctx": 100}]) == 0.15
    for doc in ([], {"slots": 1}, [{"n_ctx": 0}], ["x"], None):
        assert server_metrics.slots_kv_usage(doc) is None
