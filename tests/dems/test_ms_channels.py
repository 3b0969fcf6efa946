from __future__ import annotations

import numpy as np
import pytest

from dems.errors import DemsReadError
from dems.io.ms_channels import channel_identity, check_channel_times, unique_channel_ids

NAN = np.nan


@pytest.mark.parametrize(
    ("label", "channel", "mass"),
    [("14", "M14", 14.0), ("M32", "M32", 32.0), ("44_amu", "M44", 44.0), ("28.5", "M28.5", 28.5)],
)
def test_mass_labels(label, channel, mass):
    assert channel_identity(label) == (channel, mass)


def test_name_labels_are_sanitised_and_unique():
    name, mass = channel_identity("Nitrogen/Carbonmonoxide")
    assert name == "Nitrogen_Carbonmonoxide" and np.isnan(mass)
    assert unique_channel_ids(["Water", "Water", "M2"]) == ["Water", "Water_2", "M2"]


def test_blocks_are_checked_across_their_boundary():
    first = np.array([[0.0, 0.5], [1.0, 1.5]])
    state = check_channel_times("f.asc", first, ["a", "b"], first_line=9)
    with pytest.raises(
        DemsReadError, match=r"f\.asc: line 11: channel 'b': .*\(1\.4 s after 1\.5 s\)"
    ):
        check_channel_times("f.asc", np.array([[2.0, 1.4]]), ["a", "b"], 11, *state)


def test_nan_padding_at_the_end_is_accepted_but_not_in_the_middle():
    padded = np.array([[0.0, 0.5], [1.0, NAN], [2.0, NAN]])
    previous, ended = check_channel_times("f", padded, ["a", "b"], 1)
    assert ended.tolist() == [False, True]
    assert previous.tolist() == [2.0, 0.5]
    gap = np.array([[0.0, 0.5], [1.0, NAN], [2.0, 2.5]])
    with pytest.raises(
        DemsReadError, match=r"line 3: channel 'b': time 2\.5 s follows a missing time"
    ):
        check_channel_times("f", gap, ["a", "b"], 1)
    with pytest.raises(DemsReadError, match="follows a missing time"):
        check_channel_times("f", np.array([[3.0, 3.5]]), ["a", "b"], 4, previous, ended)
