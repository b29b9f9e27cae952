"""Reading files, local or gs://: lines in chunks, TSV/CSV rows, sha256 of the bytes.

Local files are read through io; only gs:// paths import TensorFlow (for tf.io.gfile,
through krbert.files.fs).
"""

import hashlib
import io

from krbert import cli
from krbert.files import fs, paths

READ_CHUNK = 1 << 20


def file_sha256(path):
    """Hex sha256 of a file's bytes (gs:// too)."""
    digest = hashlib.sha256()
    with fs.open_file(path, "rb") as reader:
        for chunk in iter(lambda: reader.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_lines(chunks):
    """Yields the lines (bytes, without b"\\n") of a stream given as byte chunks.

    Lines end at b"\\n" only, as GFile.readline; "\\r" stays in the line.
    """
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line
    if rest:
        yield rest


def read_lines(path, on_bytes=None, chunk_size=READ_CHUNK):
    """Yields the lines of a file (bytes, without b"\\n"), read in chunks through gfile.

    `on_bytes(n)` is called with the size of every chunk read (progress bars).
    """
    with fs.open_file(path, "rb") as reader:
        def chunks():
            for chunk in iter(lambda: reader.read(chunk_size), b""):
                if on_bytes is not None:
                    on_bytes(len(chunk))
                yield chunk

        for line in split_lines(chunks()):
            yield line


def unquote_csv(field, rounds):
    """Removes up to ``rounds`` layers of CSV quoting: ``"a ""b"" c"`` becomes ``a "b" c``.

    A layer is removed only when the field is a well-formed quoted CSV field (starts and
    ends with a quote, every inner quote doubled); anything else is returned as is. NSMC's
    files quote a review holding a double quote twice (rounds=2 undoes both).
    """
    for _ in range(rounds):
        if len(field) < 2 or field[0] != '"' or field[-1] != '"':
            break
        inner = field[1:-1]
        if '"' in inner.replace('""', ""):
            break
        field = inner.replace('""', '"')
    return field


def read_text_lines(path):
    """Yields the lines of a UTF-8 text file as str, without their line end ("\n" and a
    "\r" before it); bytes that are not UTF-8 raise InputError naming path:line."""
    for number, raw in enumerate(read_lines(path), 1):
        yield decode_line(raw, path, number).rstrip("\r")


def _row_for_message(line):
    line = line.rstrip("\r\n")
    return repr(line if len(line) <= 200 else line[:200] + "...")


def decode_line(raw, path, number):
    """``raw`` (bytes of line ``number`` of ``path``) as str; InputError naming path:line and
    the byte when it is not UTF-8. The one message for bad bytes in a line-based input."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise cli.InputError("%s:%d: not valid UTF-8 (byte %d of the line); save the file as "
                             "UTF-8" % (path, number, e.start + 1))


def read_tsv(path, required, optional=(), quote_rounds=None):
    """Reads a tab-separated UTF-8 file with a header line, by column name.

    A blank line is skipped in a file of several columns (in a one-column file it is an
    empty text). A field is CSV-unquoted ``quote_rounds[column]`` times (default once)
    when it is quoted. A BOM before the header is dropped.

    Args:
      path: the file (gs:// too).
      required: column names that must be in the header.
      optional: column names read when present.
      quote_rounds: dict column -> layers of CSV quoting to undo.

    Yields:
      (line_number, {column: value}) for every data row; a missing column, a row with the
      wrong number of fields or bytes that are not UTF-8 raise InputError naming path:line.
    """
    paths.check_input_file(path)
    quote_rounds = quote_rounds or {}
    with fs.open_file(path, "rb") as handle:
        header_line = decode_line(handle.readline(), path, 1)
        header = header_line.rstrip("\r\n").split("\t")
        if header and header[0].startswith("\ufeff"):
            header[0] = header[0][1:]
        missing = [c for c in required if c not in header]
        if missing:
            raise cli.InputError(
                "%s:1: the header line must name the columns %s (missing %s); found %s"
                % (path, ", ".join(required), ", ".join(missing), _row_for_message(header_line)))
        wanted = [(c, header.index(c), quote_rounds.get(c, 1))
                  for c in list(required) + list(optional) if c in header]
        width = len(header)
        for number, raw in enumerate(handle, start=2):
            line = decode_line(raw, path, number)
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != width:
                if not line.strip():
                    continue
                raise cli.InputError(
                    "%s:%d: expected %d tab-separated columns (%s), found %d: %s; fix or "
                    "remove the row" % (path, number, width, ", ".join(header),
                                        len(fields), _row_for_message(line)))
            row = {}
            for column, i, rounds in wanted:
                value = fields[i]
                row[column] = unquote_csv(value, rounds) if value[:1] == '"' else value
            yield number, row


def read_csv(path, required, optional=()):
    """Reads a comma-separated UTF-8 file with a header line (RFC 4180 quoting), by column.

    Yields (line_number, {column: value}) like ``read_tsv``; line_number is the line the
    row starts on. A missing column or a row with the wrong number of fields raises
    InputError naming path:line.
    """
    import csv

    paths.check_input_file(path)
    with fs.open_file(path, "rb") as handle:
        text = decode_line(handle.read(), path, 1)
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    missing = [c for c in required if c not in header]
    if missing:
        raise cli.InputError("%s:1: the header line must name the columns %s (missing %s); "
                             "found %s" % (path, ", ".join(required), ", ".join(missing),
                                           ",".join(header)))
    wanted = [(c, header.index(c)) for c in list(required) + list(optional) if c in header]
    start = reader.line_num + 1
    for fields in reader:
        number, start = start, reader.line_num + 1
        if not fields:
            continue
        if len(fields) != len(header):
            raise cli.InputError("%s:%d: expected %d comma-separated columns (%s), found %d; "
                                 "fix or remove the row (quote a field holding a comma)"
                                 % (path, number, len(header), ", ".join(header), len(fields)))
        yield number, {column: fields[i] for column, i in wanted}


def read_jsonl(path, required, optional=()):
    """Reads a JSON Lines UTF-8 file (one object a line), by key.

    Yields (line_number, {key: value as text}) like ``read_tsv`` (numbers and booleans as
    their JSON text); a blank line is skipped. A line that is not a JSON object, or one
    lacking a required key, raises InputError naming path:line.
    """
    import json

    paths.check_input_file(path)
    with fs.open_file(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, number)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise cli.InputError("%s:%d: not a JSON object (%s); write one object a line"
                                     % (path, number, e))
            if not isinstance(row, dict):
                raise cli.InputError("%s:%d: not a JSON object; write one object a line"
                                     % (path, number))
            missing = [c for c in required if c not in row]
            if missing:
                raise cli.InputError("%s:%d: the object lacks the key(s) %s; found %s"
                                     % (path, number, ", ".join(missing),
                                        ", ".join(sorted(row)) or "no keys"))
            yield number, {c: _json_text(row[c]) for c in list(required) + list(optional)
                           if c in row}


def _json_text(value):
    import json

    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
