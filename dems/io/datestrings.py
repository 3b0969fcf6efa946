"""Vendor wall-clock date strings whose field order depends on the Windows locale.

``28/11/2022 13:51:12`` (day first), ``11/28/2022 1:51:12 PM`` (month first, 12-h clock),
``2022-11-28 13:51:12,250`` (year first, decimal comma). The day/month order is only
inferred when the text proves it (a field > 12); otherwise the caller must say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

__all__ = ["DATE_ORDERS", "DateStringError", "infer_date_order", "parse_wallclock"]

#: Accepted values of the readers' ``date_order=`` option.
DATE_ORDERS = ("day-first", "month-first", "year-first")

_WALLCLOCK = re.compile(
    r"^\s*(?P<a>\d{1,4})[./-](?P<b>\d{1,2})[./-](?P<c>\d{1,4})[\s_T]+"
    r"(?P<hour>\d{1,2})[:'](?P<minute>\d{2})[:'](?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?"
    r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?\s*$"
)


class DateStringError(ValueError):
    """A date string does not match the expected layout (readers turn it into DemsReadError)."""


def _fields(text: str) -> re.Match[str]:
    match = _WALLCLOCK.match(text)
    if not match:
        raise DateStringError(f"unrecognised date/time {text.strip()!r}")
    return match


def infer_date_order(texts: Iterable[str]) -> str | None:
    """Day/month order proven by a set of date strings, or ``None`` if they are ambiguous.

    Parameters
    ----------
    texts
        Date strings written by the same program (header times, first data row ...).

    Returns
    -------
    str or None
        ``"year-first"`` for ``yyyy-mm-dd``; ``"day-first"`` when some first field
        exceeds 12; ``"month-first"`` when some second field exceeds 12; else ``None``.

    Raises
    ------
    DateStringError
        If a string is not a date, or the strings contradict each other.
    """
    orders = set()
    for text in texts:
        match = _fields(text)
        if len(match["a"]) == 4:
            orders.add("year-first")
        elif int(match["a"]) > 12:
            orders.add("day-first")
        elif int(match["b"]) > 12:
            orders.add("month-first")
    if len(orders) > 1:
        raise DateStringError(f"date strings contradict each other ({', '.join(sorted(orders))})")
    return orders.pop() if orders else None


def parse_wallclock(text: str, order: str) -> datetime:
    """Parse a naive wall-clock date/time.

    Parameters
    ----------
    text
        ``dd/mm/yyyy HH:MM:SS[.ffffff] [AM|PM]`` or the month-/year-first variants;
        separators ``/ . -``; the fraction may use a decimal comma.
    order
        One of :data:`DATE_ORDERS`.

    Returns
    -------
    datetime.datetime
        Naive datetime (microsecond precision).

    Raises
    ------
    DateStringError
        If the text is not a date/time of that order or the date is impossible.
    """
    if order not in DATE_ORDERS:
        raise DateStringError(f"date order must be one of {', '.join(DATE_ORDERS)}, not {order!r}")
    match = _fields(text)
    a, b, c = int(match["a"]), int(match["b"]), int(match["c"])
    year, month, day = {
        "day-first": (c, b, a),
        "month-first": (c, a, b),
        "year-first": (a, b, c),
    }[order]
    hour = int(match["hour"])
    if match["ampm"]:
        if not 1 <= hour <= 12:
            raise DateStringError(f"hour {hour} with AM/PM in {text.strip()!r}")
        hour = hour % 12 + (12 if match["ampm"][0] in "Pp" else 0)
    fraction = match["fraction"] or "0"
    microsecond = round(float("0." + fraction) * 1e6)
    try:
        return datetime(year, month, day, hour, int(match["minute"]), int(match["second"])).replace(
            microsecond=min(microsecond, 999_999)
        )
    except ValueError as err:
        raise DateStringError(f"impossible date/time {text.strip()!r} ({err})") from err
