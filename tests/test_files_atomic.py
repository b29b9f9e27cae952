"""krbert.files.atomic: outputs written whole, temporary names, stale temporaries, checks of
an output's folder."""

import os
import subprocess
import sys

import pytest

from krbert import cli
from krbert.files import atomic as atomic_files


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "results.txt"
    path.write_text(u"old\n")
    with pytest.raises(RuntimeError):
        with atomic_files.atomic_write(str(path)) as writer:
            writer.write(u"new, partial")
            raise RuntimeError("killed")
    assert path.read_text() == u"old\n" and os.listdir(str(tmp_path)) == ["results.txt"]
    atomic_files.write_text_atomic(str(path), u"new\n")
    assert path.read_text() == u"new\n" and os.listdir(str(tmp_path)) == ["results.txt"]


def test_temporary_names_are_per_process_and_stale_ones_are_removed(tmp_path):
    path = str(tmp_path / "out.tfrecord")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stale, mine = atomic_files.temporary_name(path, child.pid), atomic_files.temporary_name(path)
    assert stale != mine and atomic_files.is_temporary_name(stale)
    assert not atomic_files.is_temporary_name(path)
    for name in (stale, mine, path):
        with open(name, "w") as writer:
            writer.write("x")
    assert atomic_files.remove_stale_temporaries(str(tmp_path), ("out.",)) == [stale]
    assert sorted(os.listdir(str(tmp_path))) == sorted(os.path.basename(p) for p in (mine, path))


def test_check_writable_finds_a_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text(u"x")
    with pytest.raises(cli.InputError, match="a_file/sub: cannot write to this folder"):
        atomic_files.check_writable([str(blocker / "sub" / "v.txt")], "--output_file")
    with pytest.raises(cli.InputError, match="--output_file=.* is a folder"):
        atomic_files.check_writable([str(tmp_path)], "--output_file")
    atomic_files.check_writable([str(tmp_path / "new" / "v.txt")], "--output_file")
    assert os.listdir(str(tmp_path / "new")) == []
