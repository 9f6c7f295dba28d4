"""The import layers of pyproject's [tool.importlinter] hold, and the contract catches what it is there to catch.

Layers, top to bottom: cli; bench and ops (serve); flows; alerts, report, export; warehouse; connectors; models
(contracts and config); core (failpoints, progress, logs, SQL quoting, permissions). A module imports from its own
layer or lower, never higher, and no two sibling packages or modules import each other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with root's pyproject.toml over root's copy of the package (first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def copy_of_project(tmp_path: Path) -> Path:
    shutil.copy(PROJECT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(PROJECT / "finrecon", tmp_path / "finrecon", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_package_keeps_its_layers_and_has_no_cycles() -> None:
    result = lint(PROJECT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_low_layer_importing_a_higher_one_is_caught(tmp_path: Path) -> None:
    root = copy_of_project(tmp_path)
    # the config (models) reaching up into the alerts it configures: what issue 18 found
    append(root / "finrecon" / "models" / "config.py", "from finrecon.alerts import rules as _rules  # noqa")
    result = lint(root)
    assert result.returncode == 1
    assert "layers point down BROKEN" in result.stdout
    assert "finrecon.models.config -> finrecon.alerts.rules" in result.stdout


def test_two_sibling_modules_importing_each_other_is_caught(tmp_path: Path) -> None:
    root = copy_of_project(tmp_path)
    # lake <-> state inside one layer: allowed by the layers, refused as a cycle
    append(
        root / "finrecon" / "warehouse" / "lake.py", "from finrecon.warehouse import state as _state  # noqa"
    )
    append(
        root / "finrecon" / "warehouse" / "state.py", "from finrecon.warehouse import lake as _lake  # noqa"
    )
    result = lint(root)
    assert result.returncode == 1
    assert "no import cycles between sibling packages or modules BROKEN" in result.stdout
