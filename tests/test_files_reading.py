"""krbert.files.reading: sha256 of a file, lines read in chunks, CSV unquoting, TSV rows."""

import hashlib
import os

import pytest

from krbert import cli
from krbert.files import reading as file_reading


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
