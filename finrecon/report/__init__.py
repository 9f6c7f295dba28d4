"""What people read: the run summary printed by the CLI and published as a Prefect artifact."""
