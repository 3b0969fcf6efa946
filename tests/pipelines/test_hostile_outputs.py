"""Hostile outputs: an output pointing at an input or at a user's folder loses nothing.

For every command that writes files, each output option is pointed at each input (directly,
through a symbolic link, as a hard link), inside an input folder and at a user's folder: the
command must exit non-zero with one line and leave every input byte-identical. Also: existing
outputs need ``--overwrite``; leftovers of killed runs are cleaned; a second run into a locked
folder is refused; a failed run publishes nothing; ``batch`` and ``demo --force`` leave
unknown files untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from pipelines.atomic import is_ours
from tests.pipelines.hostile import dems_manifest, digest, invoke, one_line_error

DEMS_FILES = ("operando.asc", "cell.mpt", "calibration.asc", "steps.toml", "cal.json")
GRD_FILES = ("run.itm.grd", "run.itm.grd.properties.txt")

#: command -> (arguments without outputs, {output option: default name}, inputs it reads)
COMMANDS = {
    "calibrate": (
        ["dems", "calibrate", "calibration.asc", "--steps", "steps.toml"],
        {"-o": "new-cal.json"},
        ("calibration.asc", "steps.toml"),
    ),
    "process": (
        ["dems", "process", "operando.asc", "--ec", "cell.mpt", "--calibration", "cal.json"],
        {"-o": "r.zarr", "--summary": "s.json", "--html": "r.html", "--png": "r.png"},
        ("operando.asc", "cell.mpt", "cal.json"),
    ),
    "reconstruct": (
        ["tofsims", "reconstruct", "run.itm.grd", "--no-recalibrate"],
        {"-o": "v.zarr"},
        GRD_FILES,
    ),
    "cei": (
        ["tofsims", "cei", "run.itm.grd", "--sputter-rate", "0.05", "--seconds-per-scan", "2"],
        {"--summary": "c.json", "--map": "m.nc", "--html": "c.html", "--png": "c.png"},
        GRD_FILES,
    ),
    "profile": (
        ["tofsims", "profile", "run.itm.grd", "--seconds-per-scan", "2"],
        {"-o": "p.csv"},
        GRD_FILES,
    ),
}
CASES = [
    (command, option, source)
    for command, (_, outputs, inputs) in COMMANDS.items()
    for option in outputs
    for source in inputs
]


@pytest.fixture
def inputs(hostile_inputs):
    return hostile_inputs


def _args(command, **replace):
    arguments, outputs, _ = COMMANDS[command]
    chosen = {**outputs, **replace}
    return [*arguments, *(item for pair in chosen.items() for item in pair)]


def _snapshot(folder):
    return {name: digest(folder / name) for name in (*DEMS_FILES, *GRD_FILES)}


@pytest.mark.parametrize(("command", "option", "source"), CASES)
@pytest.mark.parametrize("how", ["same path", "symbolic link", "hard link"])
def test_an_output_pointing_at_an_input_is_refused(inputs, command, option, source, how):
    target = source
    if how == "symbolic link":
        target = "link-" + source
        os.symlink(inputs / source, inputs / target)
    elif how == "hard link":
        target = "hard-" + source
        os.link(inputs / source, inputs / target)
    before = _snapshot(inputs)
    result = invoke(*_args(command, **{option: target}), cwd=inputs)
    assert result.exit_code == 2, result.output
    line = one_line_error(result)
    # refused as an input, or (an input's suffix) as a wrong kind of output
    assert option in line and ("input" in line or "must end in" in line)
    assert _snapshot(inputs) == before


@pytest.mark.parametrize(
    "arguments",
    [
        ["tofsims", "cei", "{store}", "--sputter-rate", "0.05", "--summary", "{store}/s.json"],
        [
            "tofsims",
            "cei",
            "{store}",
            "--sputter-rate",
            "0.05",
            "--summary",
            "s.json",
            "--map",
            "{store}/c/m.nc",
        ],
        ["tofsims", "profile", "{store}", "-o", "{store}/p.csv"],
        ["tofsims", "profile", "{store}/counts/..", "-o", "{store}/p.csv"],
    ],
)
def test_an_output_inside_an_input_store_is_refused(tmp_path, volume_store, arguments):
    store = tmp_path / "v.zarr"
    shutil.copytree(volume_store, store)
    before = digest(store)
    result = invoke(*(a.format(store=store) for a in arguments), cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert "lies inside the input" in one_line_error(result)
    assert digest(store) == before


def test_an_output_folder_containing_an_input_is_refused(inputs, volume_store):
    holder = inputs / "holder.zarr"
    shutil.copytree(volume_store, holder)  # a store of ours, holding a copy of the GRD
    shutil.copy(inputs / "run.itm.grd", holder / "run.itm.grd")
    shutil.copy(inputs / "run.itm.grd.properties.txt", holder / "run.itm.grd.properties.txt")
    before = digest(holder)
    result = invoke(
        "tofsims", "reconstruct", holder / "run.itm.grd", "-o", holder, "--overwrite", cwd=inputs
    )
    assert result.exit_code == 2, result.output
    assert "contains the input" in one_line_error(result)
    assert digest(holder) == before


@pytest.mark.parametrize("command", ["process", "reconstruct"])
def test_a_users_folder_is_never_replaced_even_with_overwrite(inputs, command):
    user = inputs / ("r.zarr" if command == "process" else "v.zarr")
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    for extra in ([], ["--overwrite"]):
        result = invoke(*_args(command), *extra, cwd=inputs)
        assert result.exit_code == 2, result.output
        assert "did not write" in one_line_error(result)
        assert digest(user) == {"notes.txt": digest(user / "notes.txt")["."]}
    assert not (inputs / "s.json").exists()


OUTPUTS = [(command, option) for command, (_, outputs, _) in COMMANDS.items() for option in outputs]


@pytest.mark.parametrize(("command", "option"), OUTPUTS)
def test_a_users_folder_at_any_output_is_left_alone(inputs, command, option):
    user = inputs / COMMANDS[command][1][option]  # a folder where the output would go
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    before = digest(user)
    for extra in ([], ["--overwrite"]):
        result = invoke(*_args(command), *extra, cwd=inputs)
        assert result.exit_code == 2, result.output
        assert user.name in one_line_error(result)
        assert digest(user) == before
    written = [n for n in COMMANDS[command][1].values() if n != user.name]
    assert not any((inputs / name).exists() for name in written)  # nothing published


@pytest.mark.parametrize(("command", "option"), OUTPUTS)
def test_an_output_inside_a_file_is_one_line_naming_it(inputs, command, option):
    plain = inputs / "plain.txt"
    plain.write_text("keep")
    name = COMMANDS[command][1][option]
    result = invoke(*_args(command, **{option: f"plain.txt/{name}"}), cwd=inputs)
    assert result.exit_code == 1, result.output
    line = one_line_error(result)
    assert "plain.txt: a file, not a folder" in line and ".tmp" not in line
    assert plain.read_text() == "keep"


def test_two_options_naming_one_file_are_refused(inputs):
    result = invoke(*_args("process", **{"--html": "s.json"}), cwd=inputs)
    assert result.exit_code == 2, result.output
    assert "--summary and --html name the same file" in one_line_error(result)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_existing_outputs_need_overwrite_and_are_then_replaced(inputs, command):
    _, outputs, _ = COMMANDS[command]
    first = invoke(*_args(command), cwd=inputs)
    assert first.exit_code == 0, first.output
    made = {name: digest(inputs / name) for name in outputs.values()}
    again = invoke(*_args(command), cwd=inputs)
    assert again.exit_code == 2, again.output
    assert "add --overwrite" in one_line_error(again)
    assert {name: digest(inputs / name) for name in outputs.values()} == made
    replaced = invoke(*_args(command), "--overwrite", cwd=inputs)
    assert replaced.exit_code == 0, replaced.output
    for name in outputs.values():
        assert (inputs / name).exists()
        if name.endswith(".zarr"):
            assert is_ours(inputs / name)
    assert not [p.name for p in inputs.iterdir() if p.name.startswith(".tmp-")]
    assert not (inputs / ".operando.lock").exists()


def test_leftovers_of_killed_runs_are_cleaned_but_nothing_else(inputs):
    leftovers = [
        inputs / ".tmp-r.zarr-0123abcd.zarr",
        inputs / ".tmp-.old-r.zarr-89abcdef",
        inputs / ".tmp-s.json-deadbeef.json",
    ]
    for path in leftovers[:2]:
        (path / "c").mkdir(parents=True)
    leftovers[2].write_text("{half")
    keep = [inputs / ".tmp-notes.txt", inputs / "tmp-r.zarr-0123abcd"]
    for path in keep:
        path.write_text("mine")
    result = invoke(*_args("process"), cwd=inputs)
    assert result.exit_code == 0, result.output
    assert not any(os.path.lexists(p) for p in leftovers)
    assert all(p.read_text() == "mine" for p in keep)


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pipelines.outputs import FolderLock
    with FolderLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def test_a_second_run_into_a_locked_folder_is_refused(inputs):
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(inputs)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = invoke(*_args("process"), cwd=inputs)
        assert result.exit_code == 1, result.output
        line = one_line_error(result)
        assert "another operando run is writing into this folder" in line
        assert f"pid {holder.pid}" in line
        assert not (inputs / "s.json").exists() and not (inputs / "r.zarr").exists()
    finally:
        holder.kill()
        holder.wait()
    assert invoke(*_args("process"), cwd=inputs).exit_code == 0


def test_folder_lock_shared_by_threads_is_held_until_the_last_leaves(tmp_path):
    # two threads of a batch publishing into one folder: the first to finish must not release
    # the lock (or fail) while the other still writes
    from pipelines.outputs import LOCK_NAME, FolderLock

    first, second = FolderLock(tmp_path), FolderLock(tmp_path)
    first.acquire()
    second.acquire()
    first.release()  # the owner leaves first
    holder = subprocess.run(
        [sys.executable, "-c", LOCK_HOLDER, str(tmp_path)], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert "another operando run is writing into this folder" in holder.stderr
    assert (tmp_path / LOCK_NAME).exists()
    second.release()
    second.release()  # twice: nothing more to release
    assert not (tmp_path / LOCK_NAME).exists()
    with FolderLock(tmp_path):  # free again
        pass


def test_a_failed_run_publishes_nothing_and_keeps_the_old_set(inputs, monkeypatch):
    assert invoke(*_args("process"), cwd=inputs).exit_code == 0
    before = {name: digest(inputs / name) for name in ("r.zarr", "s.json", "r.html", "r.png")}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(inputs / "r.png"))

    monkeypatch.setattr("pipelines.report.ReportFiles.save", broken)
    result = invoke(*_args("process"), "--overwrite", cwd=inputs)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")
    assert "No space left" in result.output
    after = {name: digest(inputs / name) for name in ("r.zarr", "s.json", "r.html", "r.png")}
    assert after == before
    assert not [p.name for p in inputs.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    "clash", ["pd/important.txt", "summary.csv", "index.html", "_static/mine.js"]
)
def test_batch_into_a_users_folder_touches_nothing(tmp_path, dems_inputs, clash):
    out = tmp_path / "out"
    (out / clash).parent.mkdir(parents=True, exist_ok=True)
    (out / clash).write_text("the user's")
    (out / "other.txt").write_text("also the user's")
    before = digest(out)
    result = invoke("batch", dems_manifest(tmp_path, dems_inputs), "-o", out, "--workers", 1)
    assert result.exit_code == 2, result.output
    assert "not written by operando" in one_line_error(result)
    assert digest(out) == before


def test_batch_refuses_an_output_that_holds_its_inputs(tmp_path, dems_inputs):
    out = tmp_path / "out"
    shutil.copytree(dems_inputs, out / "pd")
    before = digest(out)
    result = invoke("batch", dems_manifest(tmp_path, out / "pd"), "-o", out, "--workers", 1)
    assert result.exit_code == 2, result.output
    assert "contains the input" in one_line_error(result)
    assert digest(out) == before


def test_batch_beside_user_files_keeps_them_and_marks_its_folders(tmp_path, dems_inputs):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    manifest = dems_manifest(tmp_path, dems_inputs)
    result = invoke("batch", manifest, "-o", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "the user's"
    assert is_ours(out) and is_ours(out / "pd")
    assert is_ours(out / "_static") and list((out / "_static").glob("*.js"))  # shared scripts
    assert json.loads((out / "pd" / "summary.json").read_text())["onsets"]
    # a folder the user then puts where an experiment will go is not replaced
    (out / "pd" / ".operando-output.json").unlink()
    again = invoke("batch", manifest, "-o", out, "--workers", 1, "--force")
    assert again.exit_code == 2, again.output
    assert "pd" in one_line_error(again)


def test_demo_force_refuses_to_write_over_user_files(tmp_path):
    out = tmp_path / "userdir"
    (out / "pristine-dems").mkdir(parents=True)
    (out / "pristine-dems" / "keep.txt").write_text("the user's")
    (out / "report.html").write_text("the user's report")
    before = digest(out)
    result = invoke("demo", "-o", out, "--force", "--pixels", 8, "--workers", 1)
    assert result.exit_code == 1, result.output
    line = one_line_error(result)
    assert "pristine-dems" in line and "report.html" in line
    assert digest(out) == before
