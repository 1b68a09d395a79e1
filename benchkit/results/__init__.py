"""The result file: its format and history, the sanity checks every figure passes, resuming a run, and the DataFrame (frame) every reader works from."""
