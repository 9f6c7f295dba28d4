"""What a remote source that found nothing can tell its user: the folders next to where it looked.

A misspelt export name sits beside the real one, and a misspelt prefix beside its real parent; naming them turns
"found nothing" into a fix. Shared by the S3 and Blob Storage listings, each passing its own folder lister.
"""

from __future__ import annotations

from collections.abc import Callable

SHOWN_FOLDERS = 10


def nearest_folders(list_folders: Callable[[str], list[str]], prefix: str) -> tuple[str, str]:
    """The folders directly under `prefix`, else under its nearest ancestor that has any, as (that prefix,
    "a, b, …"); ("", "") when there are none. `list_folders(p)` gives up to SHOWN_FOLDERS + 1 names under `p`
    ("" is the root; [] when it cannot list: this is only a hint)."""
    parts = [part for part in prefix.split("/") if part]
    for depth in range(len(parts), -1, -1):
        where = "".join(f"{part}/" for part in parts[:depth])
        names = list_folders(where)
        if names:
            more = ", …" if len(names) > SHOWN_FOLDERS else ""
            return where, ", ".join(names[:SHOWN_FOLDERS]) + more
    return "", ""


def looked_at(count: int, noun: str, root: str) -> str:
    """What a listing that found no delivery saw under `root`: nothing, or `count` of `noun` out of layout."""
    return f"{count} {noun}(s) under {root}, none in that layout" if count else f"nothing under {root}"
