"""`benchkit compare` and the DataFrame on the committed serve-realism result (a real run
of suites/serve-realism-smollm2.yaml on a 2-core CPU): the cache hit rate, the draft
acceptance, the SLO search's answer and the speculative speedup are shown beside the other
serve figures."""

from __future__ import annotations

import json
from conftest import run_benchkit
from paths import REPO

RESULT = REPO / "results" / "20261206T232909Z-serve-realism-smollm2-480772.json"


def _summaries() -> dict[tuple[str, bool], dict]:
    doc = json.loads(RESULT.read_text())
    return {(c["test"], bool(c["engine"].get("draft_model"))): c["summary"]
            for c in doc["cases"]}


def test_compare_shows_cache_draft_and_search_figures() -> None:
    proc = run_benchkit("compare", str(RESULT), str(RESULT))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    head = lines.index("| Model | Test | Cache hit rate base → new | Draft acceptance base → "
                       "new | SLO max load base → new | Speculative speedup base → new |")
    rows = [line for line in lines[head + 2:] if line.startswith("|")]
    s = _summaries()
    reuse = s[("serve-c2-t4-reuse", False)]["cache_hit_rate"]
    assert any("serve-c2-t4-reuse" in r and f"{reuse:.3g} → {reuse:.3g}" in r for r in rows)
    found = s[("serve-search-c8", False)]["slo_max_load"]
    assert any("serve-search-c8" in r and f"| {found} → {found} |" in r for r in rows)
    speedup = s[("serve-c1", True)]["speculative_speedup"]
    assert any("serve-c1" in r and r.endswith(f"{speedup:.3g} → {speedup:.3g} |") for r in rows)
