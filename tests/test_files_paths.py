"""krbert.files.paths: input globs, checks of input files, the input/output guard."""

import os

import pytest

from krbert import cli
from krbert.files import paths


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
