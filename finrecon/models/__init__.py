"""Schemas (Pandera, polars backend) for every landed shape and canonical table, and the typed config."""
