"""Nightly operations above the flow: the schedule (`finrecon serve`). Imports Prefect."""
