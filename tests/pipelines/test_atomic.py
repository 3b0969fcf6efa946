import json
import os
import threading

import numpy as np
import pytest

from pipelines.atomic import (
    atomic_directory,
    atomic_file,
    write_atomically,
    write_json_atomic,
    write_text_atomic,
)
from tofsims.errors import TofsimsReadError
from tofsims.io import grd
from tofsims.io.volume_store import write_volume
from tofsims.reconstruct import reconstruct
from tofsims.synthetic_raw import write_properties


def test_success_replaces_the_target(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    write_atomically(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.nc"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]


def test_temporary_keeps_the_suffix_and_folder(tmp_path):
    with atomic_file(tmp_path / "map.nc", suffix=".nc") as tmp:
        assert tmp.suffix == ".nc" and tmp.parent == tmp_path
        tmp.write_text("x")
    assert (tmp_path / "map.nc").read_text() == "x"


def test_outputs_get_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "summary.json", lambda tmp: tmp.write_text("{}"))
        with atomic_directory(tmp_path / "store") as work:
            (work / "a").write_text("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "store").stat().st_mode & 0o777 == 0o755


def test_failed_volume_write_leaves_nothing(tmp_path):
    """A chunk error while dask still writes other chunks: no partial store survives."""
    records = np.array([[0, 0, 9, 0, 400000]], dtype="<u4")
    path = tmp_path / "bad.grd"
    path.write_bytes(records.tobytes())
    write_properties(
        tmp_path / "bad.grd.properties.txt", sf=72013.7, k0=-2131.4, raster=(2, 2), scans=1
    )
    volume = reconstruct(grd.read(path, validate=False), ["PO3-"])
    with (
        pytest.raises(TofsimsReadError, match="outside the raster"),
        atomic_directory(tmp_path / "v.zarr") as temporary,
    ):
        write_volume(volume, temporary)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.grd", "bad.grd.properties.txt"]


def test_json_is_strict_numpy_converted_and_plain_ascii(tmp_path):
    document = {
        "nan": float("nan"),
        "inf": [float("inf"), -np.inf],
        "numpy": {"f32": np.float32(0.5), "i64": np.int64(3), "flag": np.bool_(True)},
        "array": np.arange(3),
        "tuple": (1.5, None),
        "path": tmp_path,
        "text": "μ + 3σ",
        7: "key",
    }
    target = write_json_atomic(tmp_path / "summary.json", document)

    def reject(constant):
        raise ValueError(f"not JSON: {constant}")

    parsed = json.loads(target.read_text(encoding="ascii"), parse_constant=reject)
    assert parsed == {
        "nan": None,
        "inf": [None, None],
        "numpy": {"f32": 0.5, "i64": 3, "flag": True},
        "array": [0, 1, 2],
        "tuple": [1.5, None],
        "path": str(tmp_path),
        "text": "μ + 3σ",
        "7": "key",
    }
    with pytest.raises(TypeError, match="object"):
        write_json_atomic(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()


def test_two_writer_threads_give_every_file_its_mode(tmp_path):
    """Modes are set per file, never through the process-wide umask another thread would see."""
    mask = os.umask(0o027)
    try:
        ordinary = 0o666 & ~0o027
        barrier = threading.Barrier(2)

        def writer(name, mode):
            barrier.wait()
            for index in range(200):
                write_text_atomic(tmp_path / f"{name}-{index}.txt", name, mode=mode)
                with atomic_directory(tmp_path / f"{name}-{index}.d", mode=mode) as work:
                    (work / "x").write_text(name)

        threads = [
            threading.Thread(target=writer, args=("ordinary", None)),
            threading.Thread(target=writer, args=("explicit", 0o600)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        os.umask(mask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert len(modes) == 800
    for name, mode in modes.items():
        if name.startswith("explicit"):
            assert mode == 0o600, name
        elif name.endswith(".d"):
            assert mode == 0o777 & ~0o027, name
        else:
            assert mode == ordinary, name
