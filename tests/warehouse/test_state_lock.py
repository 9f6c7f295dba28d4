"""Two runs never overlap: the second is refused at once, with a message that says why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from finrecon.warehouse.state import State, StateLockedError

HOLD = "import sys; from finrecon.warehouse.state import State; held = State.open(__import__('pathlib').Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"


def test_a_second_run_is_refused_while_the_first_holds_the_state(tmp_path: Path) -> None:
    path = tmp_path / "state.duckdb"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert first.stdout is not None and first.stdin is not None
    try:
        assert first.stdout.readline().strip() == "held"
        with pytest.raises(StateLockedError, match="in use by another process"):
            State.open(path)
    finally:
        first.stdin.close()
        first.wait(timeout=30)
    State.open(path).close()  # free again once the first run ends
