"""krbert.files: input globs, the input/output guard, atomic writes, line and TSV reading."""

import hashlib
import os
import subprocess
import sys

import pytest

from krbert import cli
from krbert.files import atomic as atomic_files
from krbert.files import paths
from krbert.files import reading as file_reading


def test_glob_input_files_expands_comma_separated_globs(tmp_path):
    for name in ("a-1.tfrecord", "a-2.tfrecord", "b.tfrecord"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a-3.tfrecord").mkdir()  # a folder is not an input file
    pattern = "%s/a-*.tfrecord, %s/b.tfrecord,%s/a-1.tfrecord" % (tmp_path, tmp_path, tmp_path)
    files = paths.glob_input_files(pattern)
    assert [os.path.basename(f) for f in files] == ["a-1.tfrecord", "a-2.tfrecord", "b.tfrecord"]


@pytest.mark.parametrize("pattern,message", [
    ("nope-*.tfrecord", r"^--eval_input_file: '.*nope-\*\.tfrecord' matches no file; check"),
    ("missing/*.txt", r"^--eval_input_file: '.*missing/\*\.txt' matches no file; check"),
    ("folder", r"^--eval_input_file: '.*folder' is a folder, not a file; pass the files"),
    ("", r"^--eval_input_file is empty")])
def test_glob_input_files_has_one_error_format(tmp_path, pattern, message):
    (tmp_path / "folder").mkdir()
    with pytest.raises(cli.InputError, match=message):
        paths.glob_input_files(str(tmp_path / pattern) if pattern else " , ",
                               "--eval_input_file")


def test_check_input_file(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(cli.InputError, match=r"folder: --vocab_file is a folder, not a file"):
        paths.check_input_file(str(tmp_path / "folder"), "--vocab_file")
    with pytest.raises(cli.InputError, match=r"none.txt: --vocab_file not found"):
        paths.check_input_file(str(tmp_path / "none.txt"), "--vocab_file")


def test_outputs_that_would_write_over_an_input_are_refused(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(u"text\n")
    os.symlink(str(corpus), str(tmp_path / "link.txt"))
    os.link(str(corpus), str(tmp_path / "hard.txt"))
    inputs = [str(corpus)]
    for output in ("corpus.txt", "link.txt", "hard.txt", "./sub/../corpus.txt"):
        with pytest.raises(cli.InputError, match="corpus.txt: --output_file would write over"):
            paths.check_outputs_spare_inputs([str(tmp_path / output)], inputs,
                                             "--output_file")
    paths.check_outputs_spare_inputs([str(tmp_path / "other.txt")], inputs,
                                     "--output_file")


def test_file_sha256(tmp_path):
    data = os.urandom(3 * file_reading.READ_CHUNK + 17)
    (tmp_path / "blob").write_bytes(data)
    assert file_reading.file_sha256(str(tmp_path / "blob")) == hashlib.sha256(data).hexdigest()


def test_read_lines_splits_at_newlines_across_chunks(tmp_path):
    data = b"a\r\n\nbb\n" + b"c" * 10 + b"\nlast"
    (tmp_path / "t").write_bytes(data)
    seen = []
    lines = list(file_reading.read_lines(str(tmp_path / "t"), seen.append, chunk_size=3))
    assert lines == data.split(b"\n") and sum(seen) == len(data)


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


def test_unquote_csv():
    assert file_reading.unquote_csv('"a ""b"" c"', 1) == 'a "b" c'
    assert file_reading.unquote_csv('"""a"""', 1) == '"a"'
    assert file_reading.unquote_csv('"""a"""', 2) == "a"
    assert file_reading.unquote_csv("plain", 2) == "plain"
    assert file_reading.unquote_csv('say "hi"', 2) == 'say "hi"'  # not a quoted field
    assert file_reading.unquote_csv('"bad " quote"', 1) == '"bad " quote"'  # malformed: kept


def test_read_tsv_names_the_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(u"id\tdocument\tlabel\n1\t좋다\t1\n".encode("utf-8") +
                     b"2\tcaf\xe9\t0\n3\tok\t1\n")
    with pytest.raises(cli.InputError, match=r"train.tsv:3: not valid UTF-8"):
        list(file_reading.read_tsv(str(path), ["document"]))
