"""What may enter a SQL statement's text other than a bound parameter, quoted by DuckDB itself, in one place.

Values from data or config travel as parameters (`?` / `$name`) wherever DuckDB accepts one. Where it does not
(an identifier such as a column a delivered file names, the body of a view, `COMMENT ON ... IS`), the text is
quoted by DuckDB's own expression API, never by string concatenation: a quote, a dot or a `;` stays part of the
name or the string.
"""

from __future__ import annotations

import duckdb


def identifier(name: str) -> str:
    """`name` as one quoted SQL identifier."""
    return str(duckdb.ColumnExpression(name))


def literal(value: str | None) -> str:
    """`value` as a SQL string literal (NULL for None), for statements that take no parameter."""
    return str(duckdb.ConstantExpression(value))
