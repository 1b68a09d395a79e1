"""Reports: the core page, its sections (one module each under `sections/`) and charts (under `charts/`), as Markdown and self-contained HTML."""
