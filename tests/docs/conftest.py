"""One bundled-fixture publication for the dictionary, query and export tests: the default config run twice,
first at as_of 2024-09-15 and then with the default as_of (the last charge day, 2024-09-30), so that `po_burn`
has a history of two dates and the publication is the 2024-09-30 one."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import run_flow

from finrecon.flows.bundled import bundled_config


@pytest.fixture(scope="session")
def bundled(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    """The bundled config (`finrecon.toml`) in a folder of its own; its publication is `out/finops.duckdb`."""
    root = tmp_path_factory.mktemp("docs_bundled")
    config = bundled_config(root)
    run_flow(config, as_of=date(2024, 9, 15))
    run_flow(config)
    return config


@pytest.fixture(scope="session")
def published(bundled: Path) -> Path:
    path = bundled.parent / "out" / "finops.duckdb"
    assert path.exists()
    return path
