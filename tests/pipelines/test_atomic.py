import os

import pytest

from pipelines.atomic import atomic_directory, atomic_file, write_atomically


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
