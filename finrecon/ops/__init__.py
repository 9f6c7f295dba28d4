"""Nightly operations: the schedule (`finrecon serve`), reruns of one billing period, terminal progress, Prefect
artifacts and structured logs. Kept out of `flows/` so the flow stays orchestration only; every module here is
cheap to import except `serve` (Prefect) and `artifacts`."""
