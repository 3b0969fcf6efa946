from __future__ import annotations

from datetime import datetime

import pytest

from dems.io.datestrings import DateStringError, infer_date_order, parse_wallclock


@pytest.mark.parametrize(
    ("texts", "order"),
    [
        (["28/11/2022 13:51:12"], "day-first"),
        (["11/28/2022 01:51:12 PM"], "month-first"),
        (["2022-11-28 13:51:12"], "year-first"),
        (["05/11/2022 13:51:12", "06/11/2022 09:00:00"], None),
        (["05/11/2022 13:51:12", "13/11/2022 09:00:00"], "day-first"),
    ],
)
def test_order_is_inferred_only_when_proven(texts, order):
    assert infer_date_order(texts) == order


def test_contradicting_dates_are_an_error():
    with pytest.raises(DateStringError, match="contradict"):
        infer_date_order(["28/11/2022 13:51:12", "11/28/2022 13:51:12"])


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("28/11/2022 13:51:12", "day-first", datetime(2022, 11, 28, 13, 51, 12)),
        ("11/28/2022 1:51:12 PM", "month-first", datetime(2022, 11, 28, 13, 51, 12)),
        ("11/28/2022 12:00:01 AM", "month-first", datetime(2022, 11, 28, 0, 0, 1)),
        ("11/28/2022 12:00:01 PM", "month-first", datetime(2022, 11, 28, 12, 0, 1)),
        ("28.11.2022 13:51:12,25", "day-first", datetime(2022, 11, 28, 13, 51, 12, 250000)),
        ("2022-11-28 13:51:12.123456", "year-first", datetime(2022, 11, 28, 13, 51, 12, 123456)),
        ("02-25-2020 11'10'13", "month-first", datetime(2020, 2, 25, 11, 10, 13)),
    ],
)
def test_parse_wallclock(text, order, expected):
    assert parse_wallclock(text, order) == expected


@pytest.mark.parametrize(
    ("text", "order", "message"),
    [
        ("31/02/2022 10:00:00", "day-first", "impossible"),
        ("11/28/2022 13:51:12 PM", "month-first", "AM/PM"),
        ("yesterday", "day-first", "unrecognised"),
        ("28/11/2022 13:51:12", "sideways", "date order"),
    ],
)
def test_bad_dates(text, order, message):
    with pytest.raises(DateStringError, match=message):
        parse_wallclock(text, order)
