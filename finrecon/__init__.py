"""finrecon: reconcile cloud spend (FOCUS) against purchase orders and commitments, nightly, into DuckDB."""

__version__ = "0.1.0"
