"""Perplexity and KL divergence from llama.cpp's logits, as `llama-perplexity` computes them.

Pure functions over numpy arrays: the `ppl` workload (benchkit.workloads.ppl.workload) feeds them
the logits llama.cpp returns for the scored half of each chunk; tests feed them real
logits too. The formulas are those of llama.cpp's tools/perplexity/perplexity.cpp:

- a token's negative log-likelihood is `max + log Σ exp(l - max) - l[target]` over the
  row of logits that predicts it; perplexity is exp(mean NLL), and its standard error
  `ppl * sqrt((mean(NLL²) - mean(NLL)²) / (count - 1))`.
- KL divergence is KL(reference ‖ model) per token, `Σ p_ref (log p_ref - log p)`, summed
  over the tokens whose reference log-probability is above -16 (llama-perplexity skips the
  rest); mean and error as its `mean_and_uncertainty`; "same top p" is the share of tokens
  whose most likely token is the same; Δp is p(correct token) - p_ref(correct token); the
  percentiles interpolate as its `percentile` lambda does.

The reference is kept compactly: per scored token, the log-probabilities of its `top_k`
(128) most likely tokens, exactly, and of `tail_samples` (512) tokens drawn from the rest
in proportion to their probability, the log of the probability outside the top k, the
correct token's NLL and the most likely token (5 KiB per token, 3.3 KiB compressed;
llama-perplexity's own file keeps 2 bytes x the vocabulary per token: 96 KiB for SmolLM2,
512 KiB for Gemma 3). The KLD sum over the top k is exact; the rest is estimated as
`p_rest x mean over the samples of (log p_ref - log p)`, an unbiased estimate of the
rest's share (each sample stands for p_rest / samples of the probability). Keeping only
the top k would be biased low: 6.5% below the full sum at k = 256 on SmolLM2-135M, whose
next-token distributions are broad. With the samples the mean KLD is within about 0.5% of
the full-vocabulary sum and single tokens' KLD within about 13% (docs/quality.md has the
measurement). A reference compared with itself gives exactly 0: both sides go through
the same arithmetic.

numpy is imported inside the functions: llama.cpp's libraries must load before numpy on
CUDA builds (see benchkit.engines.llama_cpp.native).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping

LOG_P_FLOOR = -16.0          # llama-perplexity sums KLD terms with log p_ref above this
BLOCK_ROWS = 64              # rows of logits handled at once: bounds the float64 temporaries
KLD_PERCENTILES = (("max", 1.0), ("p99.9", 0.999), ("p99", 0.99), ("p95", 0.95),
                   ("p90", 0.90), ("median", 0.5), ("p10", 0.10), ("p5", 0.05),
                   ("p1", 0.01), ("p0.1", 0.001), ("min", 0.0))
DP_PERCENTILES = (("max", 1.0), ("p99.9", 0.999), ("p99", 0.99), ("p95", 0.95),
                  ("p90", 0.90), ("p75", 0.75), ("median", 0.5), ("p25", 0.25),
                  ("p10", 0.10), ("p5", 0.05), ("p1", 0.01), ("p0.1", 0.001), ("min", 0.0))
REFERENCE_ARRAYS = ("top_ids", "top_lp", "tail_ids", "tail_lp", "log_rest", "nll", "argmax")
TOP_K = 128                  # reference tokens kept exactly, per scored token
TAIL_SAMPLES = 512           # tokens sampled from the rest, per scored token
_GOLDEN = 0.6180339887498949  # row i samples from offset frac((i + 1) x golden ratio)


def _np() -> Any:
    import numpy

    return numpy


def _blocks(n: int) -> Iterable[slice]:
    for start in range(0, n, BLOCK_ROWS):
        yield slice(start, min(start + BLOCK_ROWS, n))


def _normalise(block: Any) -> tuple[Any, Any, Any]:
    """(max, log Σ exp(l - max), exp(l - max)) per row, in llama-perplexity's precision:
    the exponentials in float32 (its expf), their sum and log in float64."""
    np = _np()
    mx = block.max(axis=1)
    e = np.exp(block - mx[:, None])
    lse = np.log(e.sum(axis=1, dtype=np.float64))
    return mx, lse, e


def token_nll(logits: Any, targets: Any) -> Any:
    """Negative log-likelihood (nats, float64) of `targets[i]` under row i of `logits`."""
    np = _np()
    logits = np.asarray(logits, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    out = np.empty(len(targets), dtype=np.float64)
    for s in _blocks(len(targets)):
        block = logits[s]
        mx, lse, _ = _normalise(block)
        picked = np.take_along_axis(block, targets[s, None], axis=1)[:, 0]
        out[s] = mx + lse - picked
    return out


def perplexity(nll_sum: float, nll2_sum: float, count: int) -> tuple[float, float | None]:
    """(perplexity, its standard error) from Σ NLL, Σ NLL² over `count` tokens, as
    llama-perplexity's final estimate; the error is None where it cannot be estimated."""
    if count < 1:
        raise ValueError("no scored tokens")
    mean = nll_sum / count
    ppl = math.exp(mean)
    var = nll2_sum / count - mean * mean
    if var > 0 and count > 1:
        return ppl, math.sqrt(var / (count - 1)) * ppl
    return ppl, None


# --------------------------------------------------------------------------- the reference


def reference_rows(logits: Any, targets: Any, top_k: int = TOP_K,
                   tail_samples: int = TAIL_SAMPLES, first_row: int = 0) -> dict[str, Any]:
    """The compact reference of each row of logits (see the module's docstring): the top_k
    most likely tokens, `tail_samples` tokens drawn from the rest in proportion to their
    probability (systematic sampling, its offset fixed by the row's index `first_row + i`,
    so the same logits always give the same file), their log-probs (float32), the log of
    the probability outside the top k, the correct token's NLL and the argmax."""
    np = _np()
    logits = np.asarray(logits, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    n, n_vocab = logits.shape
    k, m = min(top_k, n_vocab), tail_samples
    out = {"top_ids": np.empty((n, k), np.int32), "top_lp": np.empty((n, k), np.float32),
           "tail_ids": np.empty((n, m), np.int32), "tail_lp": np.empty((n, m), np.float32),
           "log_rest": np.empty(n, np.float32), "nll": np.empty(n, np.float32),
           "argmax": np.empty(n, np.int32)}
    for s in _blocks(n):
        block = logits[s]
        top = np.argpartition(block, n_vocab - k, axis=1)[:, n_vocab - k:]
        tail, log_rest = _tail_sample(block, top, m, first_row + s.start)
        ids = np.concatenate([top, tail], axis=1)
        lp, nll, argmax = _at(block, ids, targets[s])
        out["top_ids"][s], out["top_lp"][s] = top, lp[:, :k]
        out["tail_ids"][s], out["tail_lp"][s] = tail, lp[:, k:]
        out["log_rest"][s], out["nll"][s], out["argmax"][s] = log_rest, nll, argmax
    return out


def _tail_sample(block: Any, top: Any, m: int, first_row: int) -> tuple[Any, Any]:
    """m token ids per row drawn from the tokens outside `top` in proportion to their
    probability, and the log of that probability mass."""
    np = _np()
    mx, lse, e = _normalise(block)
    np.put_along_axis(e, top, 0.0, axis=1)
    cdf = np.cumsum(e, axis=1, dtype=np.float64)
    rest = cdf[:, -1]
    with np.errstate(divide="ignore"):
        log_rest = (np.log(rest) - lse).astype(np.float32)
    ids = np.zeros((len(block), m), np.int32)
    for r in range(len(block)):
        if rest[r] > 0 and m:
            offset = ((first_row + r + 1) * _GOLDEN) % 1.0
            u = (offset + np.arange(m)) / m * rest[r]
            ids[r] = np.minimum(np.searchsorted(cdf[r], u, side="right"), block.shape[1] - 1)
        else:
            ids[r] = top[r, 0]
    return ids, log_rest


def _at(block: Any, ids: Any, targets: Any) -> tuple[Any, Any, Any]:
    """For rows of logits and per-row token ids: their log-probs (float32), the targets'
    NLL (float32) and each row's argmax (its first maximum, as llama-perplexity's loop).

    The model under test and the reference go through this same function, so that the
    same logits give bit-identical figures (a KLD of exactly 0 against itself).
    """
    np = _np()
    mx, lse, _ = _normalise(block)
    norm = mx.astype(np.float64) + lse
    lp = (np.take_along_axis(block, ids, axis=1) - norm[:, None]).astype(np.float32)
    picked = np.take_along_axis(block, targets[:, None], axis=1)[:, 0]
    nll = (norm - picked).astype(np.float32)
    return lp, nll, block.argmax(axis=1).astype(np.int32)


# --------------------------------------------------------------------------- KL divergence


def kld_rows(logits: Any, targets: Any, ref: Mapping[str, Any]) -> dict[str, Any]:
    """Per row: KL(reference ‖ model) (nats), Δp = p - p_ref of the correct token, whether
    the top tokens agree, and both NLLs (float32 values, as llama-perplexity keeps them).

    The KLD is the exact sum over the reference's top k plus the tail's estimate,
    p_rest x the mean over the tail samples of (log p_ref - log p); terms whose reference
    log-probability is at or below -16 count 0, as in llama-perplexity. `ref` holds the
    reference arrays of exactly these rows (see `reference_rows`).
    """
    np = _np()
    logits = np.asarray(logits, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64)
    n = len(targets)
    out = {"kld": np.empty(n), "p_diff": np.empty(n), "same_top": np.empty(n, bool),
           "nll": np.empty(n), "nll_base": np.empty(n)}
    for s in _blocks(n):
        k = ref["top_ids"].shape[1]
        ids = np.concatenate([ref["top_ids"][s], ref["tail_ids"][s]], axis=1)
        lq, nll, argmax = _at(logits[s], ids, targets[s])
        lp = np.concatenate([ref["top_lp"][s], ref["tail_lp"][s]], axis=1).astype(np.float64)
        diff = np.where(lp > LOG_P_FLOOR, lp - lq, 0.0)
        head = (np.exp(lp[:, :k]) * diff[:, :k]).sum(axis=1)
        rest = np.exp(ref["log_rest"][s].astype(np.float64))
        tail = rest * diff[:, k:].mean(axis=1) if diff.shape[1] > k else 0.0
        out["kld"][s] = head + tail
        base = ref["nll"][s]
        out["p_diff"][s] = np.exp(-nll) - np.exp(-base)      # float32, as llama-perplexity
        out["same_top"][s] = argmax == ref["argmax"][s]
        out["nll"][s], out["nll_base"][s] = nll, base
    return out


def full_kld(reference_logits: Any, logits: Any) -> Any:
    """KL(reference ‖ model) per row over the whole vocabulary, terms with log p_ref above
    -16 (llama-perplexity's sum without its 16-bit rounding): what `kld_rows` estimates."""
    np = _np()
    ref = np.asarray(reference_logits, dtype=np.float32)
    cur = np.asarray(logits, dtype=np.float32)
    out = np.empty(len(ref))
    for s in _blocks(len(ref)):
        mx_p, lse_p, _ = _normalise(ref[s])
        mx_q, lse_q, _ = _normalise(cur[s])
        lp = ref[s] - (mx_p.astype(np.float64) + lse_p)[:, None]
        lq = cur[s] - (mx_q.astype(np.float64) + lse_q)[:, None]
        out[s] = np.where(lp > LOG_P_FLOOR, np.exp(lp) * (lp - lq), 0.0).sum(axis=1)
    return out


@dataclass
class KldSums:
    """llama-perplexity's running sums (its kl_divergence_result), which the figures need."""

    count: int = 0
    sum_nll: float = 0.0
    sum_nll2: float = 0.0
    sum_nll_base: float = 0.0
    sum_nll_base2: float = 0.0
    sum_nll_nll_base: float = 0.0
    sum_kld: float = 0.0
    sum_kld2: float = 0.0
    sum_p_diff: float = 0.0
    sum_p_diff2: float = 0.0
    sum_p_diff4: float = 0.0
    max_p_diff: float = 0.0
    n_same_top: int = 0

    @classmethod
    def of(cls, rows: Mapping[str, Any]) -> KldSums:
        """The sums of the rows `kld_rows` returned."""
        np = _np()
        nll, base, dp = rows["nll"], rows["nll_base"], rows["p_diff"]
        dp2 = dp * dp
        return cls(count=len(nll), sum_nll=float(nll.sum()), sum_nll2=float((nll * nll).sum()),
                   sum_nll_base=float(base.sum()), sum_nll_base2=float((base * base).sum()),
                   sum_nll_nll_base=float((nll * base).sum()),
                   sum_kld=float(rows["kld"].sum()),
                   sum_kld2=float((rows["kld"] ** 2).sum()),
                   sum_p_diff=float(dp.sum()), sum_p_diff2=float(dp2.sum()),
                   sum_p_diff4=float((dp2 * dp2).sum()),
                   max_p_diff=float(np.abs(dp).max()) if len(dp) else 0.0,
                   n_same_top=int(rows["same_top"].sum()))

    def __add__(self, other: KldSums) -> KldSums:
        values = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        values["max_p_diff"] = max(self.max_p_diff, other.max_p_diff)
        return KldSums(**values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KldSums:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def mean_and_uncertainty(total: float, total2: float, count: int) -> tuple[float, float]:
    """llama-perplexity's lambda: the mean and the standard error of the mean (0 when
    there are 10 values or fewer)."""
    if count < 1:
        return 0.0, 0.0
    f = total / count
    df = total2 / count - f * f
    return f, (math.sqrt(df / (count - 1)) if df > 0 and count > 10 else 0.0)


def _covariance(a: float, b: float, ab: float, count: int) -> float:
    if count < 10:
        return 0.0
    return (ab / count - (a / count) * (b / count)) / (count - 1)


def percentiles(values: Any, table: tuple[tuple[str, float], ...]) -> dict[str, float]:
    """Percentiles of `values` as llama-perplexity interpolates them (linear between the
    neighbours of fraction x (n - 1); its median is the mean of the middle two)."""
    np = _np()
    v = np.sort(np.asarray(values, dtype=np.float64))
    if not len(v):
        return {}
    out = {}
    for name, fraction in table:
        if name == "median":
            out[name] = float(np.median(v))
            continue
        p = fraction * (len(v) - 1)
        i = int(p)
        out[name] = float((1 - (p - i)) * v[i] + (p - i) * v[min(i + 1, len(v) - 1)])
    return out


def kld_figures(sums: KldSums) -> dict[str, Any]:
    """The figures llama-perplexity --kl-divergence prints, from its sums. Probabilities
    (Δp, RMS Δp, same top p) are fractions, not percentages."""
    n = sums.count
    log_ppl, log_ppl_unc = mean_and_uncertainty(sums.sum_nll, sums.sum_nll2, n)
    log_base, log_base_unc = mean_and_uncertainty(sums.sum_nll_base, sums.sum_nll_base2, n)
    cov = _covariance(sums.sum_nll, sums.sum_nll_base, sums.sum_nll_nll_base, n)
    ratio_unc = math.sqrt(max(log_ppl_unc ** 2 + log_base_unc ** 2 - 2 * cov, 0.0))
    ppl, ppl_base = math.exp(log_ppl), math.exp(log_base)
    kld, kld_unc = mean_and_uncertainty(sums.sum_kld, sums.sum_kld2, n)
    dp, dp_unc = mean_and_uncertainty(sums.sum_p_diff, sums.sum_p_diff2, n)
    mse, mse_unc = mean_and_uncertainty(sums.sum_p_diff2, sums.sum_p_diff4, n)
    rms = math.sqrt(mse)
    same = sums.n_same_top / n if n else 0.0
    corr = cov / (log_ppl_unc * log_base_unc) if log_ppl_unc and log_base_unc else None
    return {
        "kld_tokens": n,
        "kld_mean": kld, "kld_stderr": kld_unc,
        "same_top_p": same,
        "same_top_p_stderr": math.sqrt(same * (1 - same) / (n - 1)) if n > 1 else 0.0,
        "dp_mean": dp, "dp_stderr": dp_unc, "dp_max_abs": sums.max_p_diff,
        "dp_rms": rms, "dp_rms_stderr": 0.5 / rms * mse_unc if rms > 0 else 0.0,
        "ppl_kld_pass": ppl, "ppl_kld_pass_stderr": ppl * log_ppl_unc,
        "ppl_base": ppl_base, "ppl_base_stderr": ppl_base * log_base_unc,
        "ln_ppl_ratio": log_ppl - log_base, "ln_ppl_ratio_stderr": ratio_unc,
        "ppl_ratio": math.exp(log_ppl - log_base),
        "ppl_ratio_stderr": math.exp(log_ppl - log_base) * ratio_unc,
        "ln_ppl_correlation": corr,
    }
