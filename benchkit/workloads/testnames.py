"""The test-name grammar, built and parsed in one place: `pp512`, `tg128`, `pp512+tg128`,
and `tg128 @ d4096` at a context depth, as llama-bench names its tests.

Runs name their cases with `name`; llama-bench files are imported and written with it;
the projection and the report read names back with `parse` and `split_depth`. A name
that one side builds and the other cannot read would drop measurements silently.
"""

from __future__ import annotations

import re

_SIMPLE = re.compile(r"^(tg|pp)(\d+)(?: @ d(\d+))?$")
_AT_DEPTH = re.compile(r"^(?P<base>.+?) @ d(?P<depth>\d+)$")


def name(n_prompt: int, n_gen: int, depth: int = 0) -> str:
    """pp512, tg128, pp512+tg128; with ` @ d4096` at a depth."""
    if n_prompt > 0 and n_gen == 0:
        base = f"pp{n_prompt}"
    elif n_gen > 0 and n_prompt == 0:
        base = f"tg{n_gen}"
    else:
        base = f"pp{n_prompt}+tg{n_gen}"
    return f"{base} @ d{depth}" if depth > 0 else base


def parse(test: str) -> tuple[str, int, int] | None:
    """"tg128 @ d4096" -> ("tg", 128, 4096); "pp512" -> ("pp", 512, 0); None for any
    other test (pp+tg, chat, serve, ppl)."""
    m = _SIMPLE.match(str(test).strip())
    if not m:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3) or 0)


def split_depth(test: str) -> tuple[str, int | None]:
    """"tg128 @ d4096" -> ("tg128", 4096); a name without a depth -> (name, None)."""
    m = _AT_DEPTH.match(str(test))
    return (m["base"], int(m["depth"])) if m else (str(test), None)
