"""The community site: static HTML pages built from the accepted community results
(`build.py`: `build_site`); the templates are benchkit/templates/site."""
