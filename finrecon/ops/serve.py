"""`finrecon serve`: the nightly flow as a Prefect deployment on a cron schedule in a timezone, run by this process.

The schedule lives on the Prefect server (so the UI shows the next runs and a missed night), the work runs here:
`Flow.serve` registers the deployment and then polls the server for scheduled runs until stopped. The flow is
served with the config's task runner and its config path as the deployment's default parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finrecon.models.config import Config


class ServerUnavailable(RuntimeError):
    """No Prefect API to schedule on; the message says how to start or point at one."""


@dataclass(frozen=True)
class ServeSettings:
    name: str
    cron: str
    timezone: str
    config_path: str | None  # absolute; None: the runs load $FINRECON_CONFIG or the bundled default


def settings_for(
    config: Config, config_path: Path | None, cron: str | None, timezone: str | None
) -> ServeSettings:
    """The config's `[schedule]`, with the command line's --cron/--timezone over it (checked the same way)."""
    from finrecon.models.cron import check_cron, check_timezone

    schedule = config.schedule
    return ServeSettings(
        name=schedule.deployment,
        cron=check_cron(cron) if cron is not None else schedule.cron,
        timezone=check_timezone(timezone) if timezone is not None else schedule.timezone,
        config_path=str(config_path.resolve()) if config_path is not None else None,
    )


def deployment_options(settings: ServeSettings) -> dict[str, Any]:
    """Keyword arguments for `Flow.serve` / `Flow.to_deployment` (the same deployment either way)."""
    from prefect.schedules import Cron

    return {
        "name": settings.name,
        "schedule": Cron(settings.cron, timezone=settings.timezone),
        "parameters": {"config_path": settings.config_path},
        "description": f"finrecon nightly reconciliation at {settings.cron!r} ({settings.timezone})",
        "tags": ["finrecon", "nightly"],
    }


def api_url() -> str:
    """The Prefect API this process talks to; ServerUnavailable when none is set or it does not answer."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise ServerUnavailable(
            "PREFECT_API_URL is not set, and a schedule needs a running Prefect server: start one with "
            "`prefect server start` and run `prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api` "
            "(README: Scheduling)"
        )
    with get_client(sync_client=True) as client:
        failure = client.api_healthcheck()
    if failure is not None:
        raise ServerUnavailable(
            f"the Prefect server at {url} does not answer ({type(failure).__name__}: {failure}); start it with "
            "`prefect server start`, or fix PREFECT_API_URL"
        )
    return url


def serve_nightly(config: Config, settings: ServeSettings) -> None:
    """Register the deployment and run its scheduled flow runs here until interrupted (blocks)."""
    from finrecon.flows.nightly import configured_nightly

    configured_nightly(config).serve(**deployment_options(settings), print_starting_message=True)
