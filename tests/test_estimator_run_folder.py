"""krbert.estimator.run_folder: the run's output folder created, claimed for one run and
cleared of what dead runs left."""

import os
import socket
import subprocess

import pytest

from krbert import cli
from krbert.estimator import run_folder
from krbert.files import atomic


def test_ensure_output_dir_fails_in_one_line_when_it_cannot_create(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text(u"x")
    with pytest.raises(cli.InputError, match="cannot be created"):
        run_folder.ensure_output_dir(str(blocker / "sub"))
    run_folder.ensure_output_dir(str(tmp_path / "new" / "dir"))
    assert (tmp_path / "new" / "dir").is_dir()


def test_ensure_output_dir_refuses_a_folder_a_live_run_uses_and_clears_what_dead_runs_left(
        tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    tf1_write = out / ("model.ckpt-20_temp_%s" % ("0123456789abcdef" * 2))
    tf2_write = out / "model.ckpt-30_temp"
    for folder in (tf1_write, tf2_write):
        folder.mkdir()
        (folder / "part-00000-of-00001.index").write_bytes(b"x")
    host = socket.gethostname().split(".")[0]

    def temporary(name, pid):
        return out / ("%s%s%s.%d" % (name, atomic.TMP_MARK, host, pid))

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = temporary("eval_results.txt", dead.pid)
    stale.write_text(u"half")
    dead_marker = temporary(run_folder.IN_USE, dead.pid)  # a run killed while it held out/
    dead_marker.write_text(u"")
    kept = ["model.ckpt-30.index", "model.ckpt-30.data-00000-of-00001", "checkpoint",
            "eval_results.txt"]
    for name in kept:
        (out / name).write_text(u"x")
    before = sorted(os.listdir(str(out)))

    live = subprocess.Popen(["sleep", "60"])
    try:
        temporary(run_folder.IN_USE, live.pid).write_text(u"")  # another live run uses out/
        with pytest.raises(cli.InputError) as error:
            run_folder.ensure_output_dir(str(out))
        assert str(error.value) == (
            "--output_dir=%s is in use by another run (process %d on %s, marker %s); wait for "
            "it to finish or choose another --output_dir"
            % (out, live.pid, host, temporary(run_folder.IN_USE, live.pid).name))
        assert sorted(os.listdir(str(out))) == sorted(
            [name for name in before if name != dead_marker.name] +
            [temporary(run_folder.IN_USE, live.pid).name])  # nothing else touched
    finally:
        live.kill()
        live.wait()
    run_folder.ensure_output_dir(str(out))  # that run is gone: its writes are cleared
    mine = temporary(run_folder.IN_USE, os.getpid()).name
    assert sorted(os.listdir(str(out))) == sorted(kept + [mine])


def test_the_other_workers_of_a_job_share_the_folder_their_chief_holds(tmp_path):
    out = tmp_path / "out"
    writing = out / "model.ckpt-20_temp"  # the chief's checkpoint being written
    writing.mkdir(parents=True)
    host = socket.gethostname().split(".")[0]
    chief = subprocess.Popen(["sleep", "60"])
    try:
        marker = out / ("in_use%s%s.%d" % (atomic.TMP_MARK, host, chief.pid))
        marker.write_text(u"")
        run_folder.ensure_output_dir(str(out), chief=False)  # a worker of the same job
        assert sorted(os.listdir(str(out))) == sorted([marker.name, writing.name])
        with pytest.raises(cli.InputError, match="is in use by another run"):
            run_folder.ensure_output_dir(str(out))  # another job's chief
    finally:
        chief.kill()
        chief.wait()
