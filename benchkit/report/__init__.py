"""Reports as Markdown and self-contained HTML: results loaded and grouped (`context.py`),
the core page (`page.py`, `chip_figures.py`), the registered sections (`sections/`), the
charts (`charts/`), the writing (`render.py`)."""
