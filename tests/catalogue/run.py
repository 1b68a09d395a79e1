"""The catalogue's run-time part: cases that cannot start, workers and servers that must die
with benchkit, resuming, test names, and files that must not block. Tested in
tests/run/test_hostile_runtime.py."""

from __future__ import annotations

from catalogue_support import Entry

AREA = "cases, processes and resume"

# (id, input, the expected piece of the outcome, exit code, field, what the user sees or None)
CASES = [
    ("prepare-tokenize-list", "llama-server whose /tokenize answers a JSON list (the worker "
     "died and the case vanished before: exit 0, cases: [])", "tokenize answered without a "
     "list of tokens", 1, None, None),
    ("worker-dies-before-case", "the worker killed while it prepares a case (the remaining "
     "cases were settled as done, unmeasured)", "before the case started", 1, None,
     "exit 1, one error line: …before the case started…; that case failed, the next one "
     "measured by a fresh worker, no case missing"),
    ("measure-raises", "llama-server whose final event's timings are a list (an "
     "AttributeError in the worker)", "unexpected AttributeError while measuring", 1, None,
     None),
    ("open-raises", "Ollama's /api/show answering `details` as text (an AttributeError in "
     "the worker before)", "unexpected AttributeError while opening the model", 1, None,
     None),
    ("truncated-logits-cache", "a truncated reference-logits cache for a ppl KL divergence",
     "unreadable reference logits", 1, None, None),
    ("sigkill-benchkit", "SIGKILL of benchkit mid serve level (the worker and llama-server ran "
     "to the end of the level before)", "", 0, None,
     "the worker and llama-server end with it; the file stays readable, status running; "
     "--resume completes it"),
    ("resume-live-writer", "--resume on a file another run is still writing (the two raced)",
     "still writing this run", 2, None, None),
    ("serve-same-name", "two serve entries that differ only in prompt_tokens (both serve-c1)",
     "prompt_tokens", 2, "workloads.1", None),
    ("chat-same-name", "two chat entries that differ only in their prompt", "prompt", 2,
     "workloads.1", None),
    ("ppl-same-name", "two ppl entries that differ only in chunks", "chunks", 2,
     "workloads.1", None),
    ("chip-spec-fifo", "project --chip-spec FIFO (blocked before)", "FIFO", 2, None, None),
    ("gguf-fifo", "project --gguf FIFO (blocked before)", "FIFO", 2, None, None),
]

ENTRIES = [Entry(i, AREA, what, expect, code=code, field=field,
                 data={"seen": seen} if seen else None)
           for i, what, expect, code, field, seen in CASES]
