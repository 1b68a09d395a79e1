"""Charts drawn for reports, as SVG: the look every chart shares (`draw.py`), the core
page's charts (`page.py`) and the sections' (one module each)."""
