"""Everything a run writes is closed to other users of the machine, and `warehouse.umask` makes it stricter.

The test process's own umask is set to 0000 first (the loosest), so any file that comes out restricted was
restricted by the pipeline, not by the shell the tests happen to run in.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import charge, make_project, po
from typer.testing import CliRunner

from finrecon.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def loosest_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    """Permission bits of every file and folder the commands wrote under `root/out`."""
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in (root / "out").rglob("*")}


@pytest.mark.usefixtures("loosest_umask")
@pytest.mark.parametrize(
    ("umask_toml", "file_mode", "dir_mode"),
    [("", 0o640, 0o750), ('umask = "0077"', 0o600, 0o700)],
    ids=["default 0027", "owner only 0077"],
)
def test_published_files_get_the_configured_permissions(
    tmp_path: Path, umask_toml: str, file_mode: int, dir_mode: int
) -> None:
    files = {"a.csv": [charge(BilledCost="2.00", Tags={"po": "PO-1"})]}
    config = make_project(tmp_path, files, [po("PO-1")], warehouse_toml=umask_toml)
    runner = CliRunner()
    for command in (["run"], ["report"], ["export", "--parquet", str(tmp_path / "out" / "export")]):
        result = runner.invoke(app, [*command, "--config", str(config)])
        assert result.exit_code == 0, result.output
    found = modes(tmp_path)
    wanted = {"out/finops.duckdb", "out/state.duckdb", "out/report.html", "out/export/po_burn.parquet"}
    assert wanted <= set(found)
    assert any(name.startswith("out/lake/") and name.endswith(".parquet") for name in found)
    for name, mode in found.items():
        expected = dir_mode if (tmp_path / name).is_dir() else file_mode
        assert mode == expected, f"{name}: {oct(mode)}, expected {oct(expected)}"
    assert os.umask(0) == 0  # the command restored the process's umask
