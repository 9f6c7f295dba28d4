"""Alerts: rules evaluated on the published marts, an alert lifecycle with deduplication, and delivery."""
