"""Restrictive permissions for everything a run writes: the published database, state file, lake parts,
downloads, report and export may hold a company's spend and supplier data, so others on the machine get nothing.

A umask (not a chmod afterwards) so that no file is ever readable by others, even for the moment between its
creation and a chmod; configurable as `warehouse.umask`. The process umask is global: it is set for the
command's duration and restored after, which is safe for a CLI command and for tests that run one in-process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def restricted_umask(umask: int) -> Iterator[None]:
    """Create files and folders under `umask` (at least as strict as the process's own) while the block runs."""
    previous = os.umask(umask)
    os.umask(previous | umask)
    try:
        yield
    finally:
        os.umask(previous)
