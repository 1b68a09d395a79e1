"""Rows of the hand-written reference page of Apple chips, as the chip database must reproduce them."""

# The projection table of the reference page (inferno-metal-results-v0.10.md): chip, GPU
# core range, memory bandwidth, estimated tok/s. Every row must be found in the database.
REFERENCE_ROWS = [
    ("M1", 7, 8, 68, 25), ("M1 Pro", 14, 16, 200, 73), ("M1 Max", 24, 32, 400, 146),
    ("M1 Ultra", 48, 64, 800, 292), ("M2", 8, 10, 100, 36), ("M2 Pro", 16, 19, 200, 73),
    ("M2 Max", 30, 38, 400, 146), ("M2 Ultra", 60, 76, 800, 292), ("M3", 8, 10, 100, 36),
    ("M3 Pro", 14, 18, 150, 55), ("M3 Max", 30, 40, 300, 109), ("M4", 8, 10, 120, 44),
    ("M4 Pro", 14, 20, 273, 99), ("M4 Max", 32, 40, 546, 198),
]
