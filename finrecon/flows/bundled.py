"""The bundled default (`make run`) run somewhere else: the fixtures into a folder of the caller's choosing.

The data dictionary is generated from such a run (so it is the same on every machine), and the tests build
their reference publication the same way. It runs the flow, hence lives with it, above the warehouse.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from finrecon.models.config import DEFAULT_CONFIG_TOML, PROJECT_ROOT, load_config
from finrecon.warehouse import dictionary


def bundled_config(workdir: Path) -> Path:
    """The bundled default config (`make run`), writing into `workdir` instead of `data/`."""
    text = DEFAULT_CONFIG_TOML.replace(
        '"data/fixtures', f'"{(PROJECT_ROOT / "data" / "fixtures").as_posix()}'
    )
    for name in ("finops.duckdb", "lake", "state.duckdb"):
        text = text.replace(f'"data/{name}"', f'"out/{name}"')
    path = workdir / "finrecon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def bundled_publication(workdir: Path) -> Path:
    """Run the real nightly flow on the bundled fixtures into `workdir`; the published file's path."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # a busy machine is slow
    from finrecon.flows.nightly import (
        configured_nightly,  # Prefect reads the settings above as it is imported
    )

    config = bundled_config(workdir)
    outcome = configured_nightly(load_config(config))(config_path=str(config), as_of=None)
    return Path(outcome.published_path)


def write_dictionary(output: Path = dictionary.OUTPUT) -> list[str]:
    """Write the data dictionary from a bundled run in a temporary folder; the problems found."""
    with tempfile.TemporaryDirectory(prefix="finrecon-docs-") as tmp:
        return dictionary.write(bundled_publication(Path(tmp)), output)
