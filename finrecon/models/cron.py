"""Checks for the `[schedule]` config keys, without importing Prefect (a bad config is reported in a blink).

The cron grammar is the one Prefect's CronSchedule accepts for ordinary crontabs: five fields of `*`, numbers,
ranges, steps and lists, with month and weekday names; Prefect validates it again when the deployment is made.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
# (lowest, highest) per field: minute, hour, day of month, month, day of week (0 and 7 are Sunday)
_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_ITEM = re.compile(r"^(?:\*|(?P<low>\w+)(?:-(?P<high>\w+))?)(?:/(?P<step>\d+))?$")


def _value(text: str, field: int) -> int:
    names = _NAMES.get(field, [])
    if text.lower() in names:
        return names.index(text.lower()) + (1 if field == 3 else 0)
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number")
    number = int(text)
    low, high = _BOUNDS[field]
    if not low <= number <= high:
        raise ValueError(f"{number} is outside {low}-{high}")
    return number


def check_cron(expression: str) -> str:
    """The expression, stripped, if it is a five-field crontab line (or @daily etc.); else ValueError saying why."""
    text = " ".join(expression.split())
    if text.lower() in _ALIASES:
        return text
    fields = text.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r}: a cron needs 5 fields (minute hour day-of-month month day-of-week), e.g. '30 2 * * *'"
        )
    for index, field in enumerate(fields):
        for item in field.split(","):
            match = _ITEM.match(item)
            try:
                if match is None:
                    raise ValueError(f"{item!r} is not *, a number, a range or a step")
                for part in ("low", "high"):
                    if match.group(part) is not None:
                        _value(match.group(part), index)
                if match.group("step") is not None and int(match.group("step")) == 0:
                    raise ValueError("a step of 0")
            except ValueError as err:
                raise ValueError(f"{expression!r}: field {index + 1} ({field}): {err}") from None
    return text


def check_timezone(name: str) -> str:
    """An IANA timezone name (e.g. Europe/Berlin); else ValueError naming it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA timezone (e.g. 'Europe/Berlin', 'UTC')") from None
    if name not in available_timezones() and name != "UTC":
        raise ValueError(f"{name!r} is not an IANA timezone (e.g. 'Europe/Berlin', 'UTC')")
    return name
