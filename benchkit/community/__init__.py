"""Community results: submitted files scrubbed, identified and validated, and the static site built from them."""
