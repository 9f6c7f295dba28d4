"""Deterministic crash points: kill the run at an exact place, to prove what a crash there leaves behind.

Killing a run "while it lands" by polling for files from outside is a race: on a fast machine the stage is over
before the poll sees it, on a slow one the kill lands somewhere else. So, like etcd's gofail and FoundationDB's
buggify, the code names its dangerous places: `failpoint("landing.part-written")` is a no-op unless the
environment variable `FINRECON_FAILPOINT` names that point, in which case the process sends itself SIGKILL — a
real, un-catchable kill (no `finally`, no atexit, no flush), exactly as the OOM killer or a power cut would end
it. `FINRECON_FAILPOINT=<name>:stop` sends SIGSTOP instead: the run freezes there, holding whatever it holds
(the state file's lock), until a SIGCONT; the concurrency tests use it to start a second run at that moment.

A failpoint costs one environment lookup, so the calls stay in production code. The names in use are listed in
`POINTS`; tests/warehouse/test_crash.py kills a run at each of them (the first one it freezes instead).
"""

from __future__ import annotations

import os
import signal

ENV = "FINRECON_FAILPOINT"

POINTS = (
    "run.before-lock",  # in the flow, past the CLI's lock check, the state file not opened yet
    "download.partial",  # an S3 data file being downloaded: its first chunk received, the file not complete
    "landing.chunk-written",  # an input's first chunk appended to its temporary part, the input not complete
    "landing.part-written",  # a lake part renamed into place, not yet recorded in the state file
    "land.done",  # every input landed and recorded, the marts not built yet
    "erp.version-written",  # an ERP extract's last good copy written in the state file, not committed
    "model.partial",  # some models built into the .building database
    "alerts.delivered",  # notifications handed to their channels, their delivery not recorded yet
    "publish.before-rename",  # the new database complete and checkpointed, not renamed over the old one
    "publish.after-rename",  # the new database published, the state file not closed yet
)


def failpoint(name: str) -> None:
    """Kill (or with `:stop`, freeze) this process here if FINRECON_FAILPOINT names this point."""
    wanted = os.environ.get(ENV)
    if wanted is None or wanted.partition(":")[0] != name:
        return
    os.kill(os.getpid(), signal.SIGSTOP if wanted.endswith(":stop") else signal.SIGKILL)
