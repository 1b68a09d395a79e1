#!/usr/bin/env bash
# Serving like real users on an NVIDIA GPU, everything under OUT:
#
#   scripts/serve_gpu_evidence.sh [--wheels DIR]... LLAMA_SERVER_DIR MODEL OUT
#
# LLAMA_SERVER_DIR holds a CUDA build's llama-server and llama-quantize (its build/bin);
# MODEL is a GGUF file, or a folder whose first *.gguf is taken, with a byte-level BPE
# vocabulary (SmolLM2, Qwen, Llama 3: the peer tool's tokenizer is rebuilt from it). Steps:
#   1. models: llama-quantize makes the target (Q8_0) and the draft (Q4_0) from MODEL
#      (OUT/models; same vocabulary, real disagreement), as the CPU suite's pair is made;
#   2. suites/serve-realism-gpu.yaml with their paths (OUT/serve-realism-gpu.yaml), run:
#      conversations with cache reuse and bust, the speculative levels with their speedup,
#      the SLO search (OUT/results/*.json), and its report (OUT/reports/, Markdown and HTML);
#   3. scripts/serve_peer_agreement.py: benchkit and llama-benchy alternated on one
#      llama-server with every layer on the GPU (OUT/peer/peer-agreement.md and .json).
# Offline: --wheels DIR (repeatable) or BENCHKIT_WHEELS (folders separated by ':') hold
# wheels of benchkit's dependencies and of the peer tool (llama-benchy, aiohttp and its
# parts, pydantic, tabulate, tokenizers); they are installed into OUT/site with pip's
# --no-index. Without wheels, this Python must already have them. A step that fails does
# not stop the next; each logs to OUT/<step>.log. SERVE_SUITE (a suite of the same shape)
# and PEER_ARGS (serve_peer_agreement.py's load options) replace the defaults: a dry run of
# the whole script on a CPU takes a small suite and small peer settings.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
wheels=()
IFS=: read -r -a from_env <<< "${BENCHKIT_WHEELS:-}"
for w in "${from_env[@]}"; do [ -n "$w" ] && wheels+=("$w"); done
while [ "${1:-}" = "--wheels" ]; do wheels+=("$2"); shift 2; done
if [ $# -ne 3 ]; then
  echo "usage: $0 [--wheels DIR]... LLAMA_SERVER_DIR MODEL OUT" >&2
  exit 2
fi
bin=$(cd "$1" && pwd) model=$2 out=$3
for tool in llama-server llama-quantize; do
  [ -x "$bin/$tool" ] || { echo "$bin/$tool: not an executable" >&2; exit 2; }
done
[ -d "$model" ] && model=$(ls "$model"/*.gguf 2>/dev/null | head -1)
[ -f "$model" ] || { echo "MODEL: no GGUF file found" >&2; exit 2; }
mkdir -p "$out"/models "$out"/results "$out"/reports
out=$(cd "$out" && pwd)

if [ ${#wheels[@]} -gt 0 ]; then
  links=(); for w in "${wheels[@]}"; do links+=(--find-links "$w"); done
  deps=$(python3 - "$repo/pyproject.toml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = re.search(r"^dependencies = \[(.*?)\]", text, re.S | re.M).group(1)
print(" ".join(d for d in re.findall(r'"([^"]+)"', block) if not d.startswith("llama-cpp-python")))
PY
)
  # shellcheck disable=SC2086
  { python3 -m pip install -q --no-index "${links[@]}" --target "$out/site" $deps &&
    python3 -m pip install -q --no-index --no-deps "${links[@]}" --target "$out/site" \
      llama-benchy aiohttp aiohappyeyeballs aiosignal frozenlist multidict propcache yarl \
      pydantic pydantic-core annotated-types typing-inspection tabulate tokenizers
  } > "$out/install.log" 2>&1 || { tail -20 "$out/install.log"; exit 1; }
  export PYTHONPATH="$out/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export BENCHKIT_LLAMA_SERVER="$bin/llama-server"
bk() { python3 -m benchkit.cli.main "$@"; }
step() { echo "== $1 $(date -u +%H:%M:%S)"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem \
  --format=csv | tee "$out/gpu.csv"
"$bin/llama-server" --version 2>&1 | tail -2 | tee "$out/llama-server-version.txt"

step models
target="$out/models/target.Q8_0.gguf" draft="$out/models/draft.Q4_0.gguf"
{ { [ -f "$target" ] || "$bin/llama-quantize" --allow-requantize "$model" "$target" Q8_0; } &&
  { [ -f "$draft" ] || "$bin/llama-quantize" --allow-requantize "$model" "$draft" Q4_0; }
} > "$out/models.log" 2>&1 || { tail -20 "$out/models.log"; exit 1; }

step suite
suite="$out/$(basename "${SERVE_SUITE:-serve-realism-gpu.yaml}")"
python3 - "${SERVE_SUITE:-$repo/suites/serve-realism-gpu.yaml}" "$target" "$draft" "$suite" <<'PY'
import sys, yaml
src, target, draft, dst = sys.argv[1:]
doc = yaml.safe_load(open(src))
doc["models"] = [{"path": target}]
for engine in doc["engines"]:
    if "draft_model" in engine:
        engine["draft_model"] = draft
yaml.safe_dump(doc, open(dst, "w"), sort_keys=False)
PY
bk run "$suite" -o "$out/results" --no-progress 2>&1 | tee "$out/suite.log"
result=$(ls -t "$out"/results/*.json 2>/dev/null | head -1)
[ -n "$result" ] && bk report "$result" -o "$out/reports/serve-realism-gpu" 2>&1 | tee -a "$out/suite.log"

step peer
# shellcheck disable=SC2086
python3 "$repo/scripts/serve_peer_agreement.py" --llama-server "$bin/llama-server" \
  --model "$target" ${PEER_ARGS:---ngl 99 --np 16 --threads 4 --concurrency 1,2,4,8,16 \
  --prompt-tokens 256 --max-tokens 128 --runs 4 --rounds 2} --out "$out/peer" \
  > "$out/peer.log" 2>&1 || echo "peer agreement failed: see $out/peer.log"
tail -40 "$out/peer.log"
step done
