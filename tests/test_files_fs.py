"""krbert.files.fs: one set of file operations for local paths (the standard library) and
remote ones (tf.io.gfile; TensorFlow 2's ram:// file system stands in for gs:// here)."""

import os
import subprocess
import sys
import uuid

import pytest

from conftest import ROOT
from krbert import cli
from krbert.files import atomic, fs, in_use, paths
from krbert.tf_compat import IS_TF2, tf

needs_ram = pytest.mark.skipif(not IS_TF2, reason="TensorFlow 1.15 has no ram:// file system")


def test_a_broken_link_is_absent_as_an_input_but_takes_its_name(tmp_path):
    (tmp_path / "file").write_text(u"x")
    os.symlink(str(tmp_path / "gone"), str(tmp_path / "broken"))
    os.symlink(str(tmp_path / "file"), str(tmp_path / "link"))
    presence = {name: (fs.exists(str(tmp_path / name)), fs.lexists(str(tmp_path / name)))
                for name in ("file", "link", "broken", "missing")}
    assert presence == {"file": (True, True), "link": (True, True), "broken": (False, True),
                        "missing": (False, False)}


def test_a_broken_link_is_not_found_as_an_input_and_taken_as_an_output(tmp_path):
    broken = tmp_path / "broken"
    os.symlink(str(tmp_path / "gone"), str(broken))
    with pytest.raises(cli.InputError, match="broken: --input_file not found; check the path"):
        paths.check_input_file(str(broken), "--input_file")
    with pytest.raises(cli.InputError, match="--output_dir=.*broken is a file; give a new"):
        with atomic.staged_folder(str(broken), "--output_dir"):
            pass
    atomic.write_text_atomic(str(broken), u"new\n")  # the link is replaced, not followed
    assert not broken.is_symlink() and broken.read_text() == u"new\n"
    assert sorted(os.listdir(str(tmp_path))) == ["broken"]
    os.symlink(str(tmp_path / "gone"), str(tmp_path / "other"))
    atomic.discard(str(tmp_path / "other"))
    assert sorted(os.listdir(str(tmp_path))) == ["broken"]


def test_local_operations(tmp_path):
    folder = str(tmp_path / "a" / "b")
    fs.makedirs(folder)
    fs.makedirs(folder)  # there already: nothing happens
    assert fs.isdir(folder) and not fs.isdir(str(tmp_path / "none"))
    path = os.path.join(folder, "t.txt")
    with fs.open_file(path, "w") as writer:
        writer.write(u"한글\r\nline\n")
    assert open(path, "rb").read() == u"한글\r\nline\n".encode("utf-8")  # UTF-8, ends kept
    with fs.open_file(path, "rb") as reader:
        assert reader.read() == u"한글\r\nline\n".encode("utf-8")
    assert fs.mtime_ns(path) == os.stat(path).st_mtime_ns
    fs.rename(path, os.path.join(folder, "u.txt"), overwrite=True)
    assert fs.listdir(folder) == ["u.txt"]
    fs.remove(os.path.join(folder, "u.txt"))
    assert fs.listdir(folder) == []
    fs.rmtree(str(tmp_path / "a"))
    assert os.listdir(str(tmp_path)) == []
    assert fs.errors(path)[0] is OSError


def test_local_files_never_import_tensorflow(tmp_path):
    code = """
import os, sys
sys.modules["tensorflow"] = None  # an import of TensorFlow fails
from krbert.files import atomic, fs, in_use, paths, reading
folder = sys.argv[1]
atomic.write_text_atomic(os.path.join(folder, "out.txt"), "a\\nb\\n")
paths.check_input_file(os.path.join(folder, "out.txt"), "--input_file")
assert list(reading.read_lines(os.path.join(folder, "out.txt"))) == [b"a", b"b"]
in_use.release(in_use.claim(folder, "--output_dir"))
with atomic.staged_folder(os.path.join(folder, "model"), "--output_dir") as staging:
    atomic.write_text_atomic(os.path.join(staging, "config.json"), "{}")
atomic.discard(os.path.join(folder, "out.txt"))
print(sorted(fs.listdir(folder)), fs.errors(folder) == (OSError,))
"""
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "['model'] True"


@pytest.fixture
def remote_folder():
    """A new folder of TensorFlow's in-memory file system (removed afterwards)."""
    folder = "ram://krbert-%s" % uuid.uuid4().hex
    yield folder
    if tf.io.gfile.isdir(folder):
        tf.io.gfile.rmtree(folder)


@needs_ram
def test_remote_operations_go_through_gfile(remote_folder):
    folder = remote_folder + "/a"
    assert fs.is_remote(folder) and not fs.is_remote("/tmp/a")
    assert not fs.exists(folder) and not fs.lexists(folder)
    fs.makedirs(folder + "/sub")
    assert fs.isdir(folder) and fs.exists(folder) and fs.lexists(folder)
    with fs.open_file(folder + "/t.txt", "w") as writer:
        writer.write(u"한글\n")
    with fs.open_file(folder + "/t.txt", "rb") as reader:
        assert reader.read() == u"한글\n".encode("utf-8")
    fs.rename(folder + "/t.txt", folder + "/u.txt", overwrite=False)
    assert sorted(fs.listdir(folder)) == ["sub", "u.txt"]
    assert fs.mtime_ns(folder + "/u.txt") == tf.io.gfile.stat(folder + "/u.txt").mtime_nsec
    assert fs.errors(folder) == (OSError, tf.errors.OpError)
    fs.remove(folder + "/u.txt")
    fs.rmtree(folder + "/sub")
    assert fs.listdir(folder) == []


@needs_ram
def test_outputs_and_run_markers_on_a_remote_folder(remote_folder):
    # (not staged_folder: ram:// lists names by prefix, so "model" would hold "model.tmp-*")
    fs.makedirs(remote_folder)
    atomic.write_text_atomic(remote_folder + "/out.txt", u"done\n")
    marker = in_use.claim(remote_folder, "--output_dir")
    assert sorted(fs.listdir(remote_folder)) == sorted(["out.txt", os.path.basename(marker)])
    in_use.release(marker)
    atomic.discard(remote_folder + "/out.txt")
    assert fs.listdir(remote_folder) == []
