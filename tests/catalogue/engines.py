"""The catalogue's engines part: figures from servers and llama-bench that no reader would
accept, servers that serve another model, and HTTP answers without bounds. Tested in
tests/engines/http/test_hostile_servers.py."""

from __future__ import annotations

from catalogue_support import Entry

AREA = "figures from servers and tools"
READERS_OK = ("the other case measured; report, compare, validate and project read the "
              "file")

# llama-server's /completion timings, as the fake tool answers them (tests/tool_fakes.py):
# (mode, what, the piece of the failed case's error)
SERVER_TIMINGS = [
    ("nan", "NaN timings from llama-server (a worker traceback before)",
     "timings as numbers"),
    ("inf", "Infinity timings from llama-server", "timings as numbers"),
    ("zero", "timings of 0 ms for every token (recorded as 0 tok/s before)",
     "is not a measurement"),
    ("negative", "negative timings (recorded before)", "is negative"),
    ("absurd", "1e-9 ms per token: 10^12 tok/s (every reader refused the file before)",
     "not a plausible figure"),
]
# llama-bench's samples_ns, as the fake tool prints them
BENCH_SAMPLES = [
    ("zero", "llama-bench samples of 0 ns", "is not a measurement"),
    ("negative", "negative llama-bench samples", "is negative"),
    ("text", "a llama-bench sample that is text (a traceback before)", "not a whole number"),
    ("fraction", "a llama-bench sample of 0.5 ns", "not a whole number"),
    ("absurd", "llama-bench samples of 1 ns", "not a plausible figure"),
]
# (id, what, the piece of the outcome, exit code, what the user sees or None)
HTTP = [
    ("openai-other-model", "an OpenAI server serving another model in benchkit run (its "
     "figures were filed under the suite's model before)", "not the suite's model", 1, None),
    ("ollama-other-model", "Ollama serving another architecture in benchkit run",
     "Ollama serves another model", 1, None),
    ("openai-usage-absurd", "usage.completion_tokens of 10^12 in an OpenAI stream",
     "not a plausible figure", 1, None),
    ("ollama-zero-duration", "Ollama's eval_duration of 0 ns", "is not a measurement", 1,
     None),
    ("trickle", "a server sending a byte every 0.3 s, timeout_s 2 (held the case for the hour "
     "of --case-timeout before)", "no complete answer within 2 s", 1, None),
    ("gzip-bomb", "a gzip answer of 256 KB that expands to 256 MiB (a 13 MB one took 3 GB "
     "before)",
     "answered more than 64 MiB", 1, None),
    ("url-credentials", "a server URL with user:password@ (written into the result before)",
     "", 0, "exit 0: the requests authenticate; no file, progress or error line holds the "
     "password"),
]

ENTRIES = (
    [Entry(f"server-{mode}-timings", AREA, what, expect, code=1,
           data={"seen": f"exit 1, one error line: …{expect}…; {READERS_OK}"})
     for mode, what, expect in SERVER_TIMINGS]
    + [Entry(f"bench-{mode}-samples", AREA, what, expect, code=1,
             data={"seen": f"exit 1, one error line: …{expect}…; {READERS_OK}"})
       for mode, what, expect in BENCH_SAMPLES]
    + [Entry(i, AREA, what, expect, code=code, data={"seen": seen} if seen else None)
       for i, what, expect, code, seen in HTTP])
