"""Other tools' formats: llama-bench's json, jsonl, csv, sql and Markdown, written from results and read back as results."""
