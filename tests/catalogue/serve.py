"""The catalogue's serve part: levels stopped mid-way, limits that must limit, streams of
hostile length, and a fuzz of malformed answers. Tested in
tests/workloads/serve/test_hostile_serve.py."""

from __future__ import annotations

from catalogue_support import Entry

AREA = "serve levels"
REQUESTS = 6          # a stopped level's requests; the server finishes FINISHED of them
FINISHED = 2

# (signal, how the run ends, the case's status)
STOPS = [
    ("SIGINT", "interrupted", "partial"),
    ("SIGTERM", "interrupted", "partial"),
    ("SIGHUP", "interrupted", "partial"),
]

# (id, what, the piece of the outcome, exit code, field, what the user sees or None)
CASES = [
    *[(f"{sig.lower()}-mid-level", f"{sig} after {FINISHED} of a level's {REQUESTS} requests "
       "(every finished request was lost before: 0 iterations, \"after 0 of N\" with N the "
       "suite's iterations)", f"after {FINISHED} of {REQUESTS} requests", 0, None,
       f"the level kept as {status}: its {FINISHED} finished requests, \"interrupted by "
       f"{sig} after {FINISHED} of {REQUESTS} requests\"") for sig, _, status in STOPS],
    ("timeout-mid-level", f"--case-timeout after {FINISHED} of a level's {REQUESTS} requests",
     f"after {FINISHED} of {REQUESTS} requests", 1, None,
     f"exit 1, one error line: …time limit…; the level failed with its {FINISHED} finished "
     "requests"),
    ("tiny-rate", "rate: 1e-5 (slept a day whatever timeout said)",
     "longer than the level's timeout", 2, "workloads.0.serve.rate", None),
    ("requests-int32", "requests: 2147483647 (built a 3.2 GB prompt pool before the first "
     "request)", "time limit", 1, None, "the level starts at once; --case-timeout stops it "
     "with its finished requests kept"),
    ("sessions-int32", "requests: 2147483647 in conversations of 2 turns", "conversations",
     2, "workloads.0.serve.requests", None),
    ("long-line", "one streamed line of 48 MB (32 s at 50 MB before: quadratic)", "", 0,
     None, "exit 0: parsed in linear time (scripts/stream_parse_cost.py prints the cost)"),
    ("huge-stream", "a stream of 100 MB for one request", "passed 64 MiB", 1, None, None),
    ("fuzz", "seeded random malformed server answers (bad JSON, NaN, 10^300, negative or "
     "text counts, missing final events, deep nesting, bytes that are not UTF-8)", "", 0,
     None, "each level a clean failure in one line or a result; report, compare, validate "
     "and project read every file"),
]

ENTRIES = [Entry(i, AREA, what, expect, code=code, field=field,
                 data={"seen": seen} if seen else None)
           for i, what, expect, code, field, seen in CASES]
