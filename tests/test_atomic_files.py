import pytest

from pipelines.atomic_files import atomic_path, write_atomically


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
    with atomic_path(tmp_path / "map.nc") as tmp:
        assert tmp.suffix == ".nc" and tmp.parent == tmp_path
        tmp.write_text("x")
    assert (tmp_path / "map.nc").read_text() == "x"
