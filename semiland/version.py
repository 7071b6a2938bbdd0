"""semiland's version (one place: the package, reports, map metadata and `--version` read it)."""

__version__ = "0.1.0"
