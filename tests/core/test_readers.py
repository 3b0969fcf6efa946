"""The reader registry: the xarray entry points are the one list, one sniffing signature."""

from __future__ import annotations

from importlib import metadata

import pytest

import dems.io
import tofsims.io
from tofsims.synthetic import layered_sample
from tofsims.synthetic_raw import write_grd

ENGINES = {ep.name: ep for ep in metadata.entry_points(group="xarray.backends")}


@pytest.mark.parametrize(("domain", "prefix"), [(dems.io, "dems_"), (tofsims.io, "tofsims_")])
def test_every_registered_engine_is_a_reader_in_sniffing_order(domain, prefix):
    modules = domain.readers()
    registered = {ep.value.split(":")[0] for name, ep in ENGINES.items() if name.startswith(prefix)}
    assert {m.__name__ for m in modules} == registered
    for module in modules:
        assert isinstance(module.FORMAT, str) and module.FORMAT
        # one signature in both domains: the first bytes of the file
        assert module.can_open("nothing.txt", b"") is False
    orders = [ENGINES[name].load().sniff_order for name in ENGINES if name.startswith(prefix)]
    assert len(set(orders)) == len(orders)  # no tie: the order is defined


def test_generic_formats_are_sniffed_last():
    assert dems.io.readers()[-1].__name__ == "dems.io.generic_csv"
    assert tofsims.io.readers()[-1].__name__ == "tofsims.io.ascii3d"


def test_grd_reports_its_properties_file_as_an_input(tmp_path):
    volume, _ = layered_sample("pristine", seed=0, ny=4, nx=4)
    write_grd(volume["counts"], tmp_path / "run.itm.grd", seed=0)
    properties = tmp_path / "run.itm.grd.properties.txt"
    assert properties.is_file()
    assert tofsims.io.input_files(tmp_path / "run.itm.grd") == [
        tmp_path / "run.itm.grd",
        properties,
    ]
    other = tmp_path / "elsewhere.txt"
    assert tofsims.io.input_files(tmp_path / "run.itm.grd", properties=other)[1] == other
