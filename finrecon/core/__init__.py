"""The lowest layer: what every other layer may import and which imports nothing of the package.

Crash points for the tests (failpoints), progress bars, JSON logs, file permissions and DuckDB's own quoting of
identifiers and literals (sql_text).
"""
