#!/usr/bin/env bash
# Run an engines suite whose `openai` engine points at llama-cpp-python's own OpenAI-compatible
# server on 127.0.0.1:8765: start that server on the suite's first model, wait until it
# answers, run the suite, and always stop the server.
#
#   scripts/engines_example.sh SUITE [benchkit run options...]
#   e.g. scripts/engines_example.sh suites/engines-smollm2.yaml -o results/
#        scripts/engines_example.sh suites/engines-tinyllama-gpu.yaml --synthetic
# The server serves the file under its path, which is how the openai engine knows it is the
# suite's model. Environment: PORT (8765), N_GPU_LAYERS (from the suite's
# engine.n_gpu_layers), PYTHON (python3).
set -euo pipefail
suite=$1
shift
py=${PYTHON:-python3}
port=${PORT:-8765}
synthetic=0
for a in "$@"; do [ "$a" = "--synthetic" ] && synthetic=1; done
# the suite's first model as a local file (a stand-in with --synthetic) and its GPU layers
read -r model ngl < <("$py" - "$suite" "$synthetic" <<'PY'
import sys
from benchkit.models.ref import resolve
from benchkit.run.suite import load_suite
suite = load_suite(sys.argv[1])
path = resolve(suite.models[0], synthetic=sys.argv[2] == "1").path
ngl = next((e.options.n_gpu_layers for e in suite.engines if hasattr(e.options, "n_gpu_layers")), -1)
print(path, ngl)
PY
)
ngl=${N_GPU_LAYERS:-$ngl}
log=$(mktemp)
"$py" -m llama_cpp.server --model "$model" --host 127.0.0.1 \
  --port "$port" --n_gpu_layers "$ngl" --n_ctx 2048 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
  if "$py" -c "import httpx,sys; httpx.get('http://127.0.0.1:$port/v1/models', timeout=1).raise_for_status()" 2>/dev/null; then
    break
  fi
  kill -0 "$server" 2>/dev/null || { echo "llama_cpp.server exited:" >&2; tail -20 "$log" >&2; exit 1; }
  sleep 0.5
done
echo "llama_cpp.server on 127.0.0.1:$port serves $model (n_gpu_layers $ngl)" >&2
"$py" -m benchkit.cli.main run "$suite" "$@"
