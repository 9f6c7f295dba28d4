"""Prefect flows: orchestration only (the logic lives in connectors, models, SQL and the warehouse)."""
