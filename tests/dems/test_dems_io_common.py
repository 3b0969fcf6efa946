from datetime import datetime

import pytest

from dems.io.locale import detect_decimal, to_float
from dems.io.timestamps import from_unix, iso, localize, resolve_timezone


def test_decimal_comma_detected():
    lines = ["2\t1\t0,000000000000000E+000\t4,4586502E-002", "2\t1\t1,5\t3,25"]
    assert detect_decimal(lines) == ","


def test_decimal_point_detected_with_comma_field_separator():
    assert detect_decimal(["1.5,2.25,3.0"], sep=",") == "."


def test_to_float_comma():
    assert to_float("4,4586502E-002", ",") == pytest.approx(0.044586502)


def test_naive_local_time_is_interpreted_in_given_zone():
    zone, name = resolve_timezone("Europe/Copenhagen")
    moment = localize(datetime(2022, 9, 19, 11, 28, 2, 704037), zone)
    assert name == "Europe/Copenhagen"
    assert iso(moment) == "2022-09-19T11:28:02.704037+02:00"
    assert moment.timestamp() == pytest.approx(1663579682.704037)


def test_unix_epoch_round_trip():
    assert from_unix(1663579682.704037).isoformat().startswith("2022-09-19T09:28:02.704037")


def test_unknown_zone_is_rejected():
    with pytest.raises(ValueError, match="unknown time zone"):
        resolve_timezone("Mars/Olympus")


def test_naive_datetime_cannot_be_formatted():
    with pytest.raises(ValueError):
        iso(datetime(2022, 1, 1))
