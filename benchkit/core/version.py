"""The package's version, in one place: the package, results, the site and `--version` read it here."""

__version__ = "0.2.0"
