"""Charts drawn for reports, as inline SVG: the core charts and the helpers every chart module shares."""
