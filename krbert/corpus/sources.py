"""Raw sources read as a stream of documents: plain text, JSON lines, CSV/TSV and
MediaWiki XML dumps (build_corpus.py is the command line; no flags here).

Every reader yields ``RawDocument`` s one at a time, so memory follows the largest
document, never the file. A document is a list of paragraphs (str); a paragraph is split
into sentences later. Compressed inputs (``.bz2``, ``.gz``) are read as streams.

Bad input is a one-line ``cli.InputError`` naming the file and the place (line, or byte
offset in a compressed stream): bytes that are not UTF-8, a missing JSON field or CSV
column, a line that is not JSON. A dump that breaks off (a truncated ``.bz2``, XML cut
mid-page) keeps the pages before the break; ``on_warning`` receives one line saying
where it stopped.
"""

import bz2
import collections
import csv
import gzip
import io
import json
import os
import re
import zlib

from krbert import cli
from krbert.corpus import wikitext
from krbert.files import reading

RawDocument = collections.namedtuple("RawDocument", ["where", "paragraphs"])
"""where: "path:line" (or "path: page 'title'") of the document's start; paragraphs: [str]."""

FORMATS = ("text", "jsonl", "csv", "wiki")
TEXT_DOCUMENTS = ("auto", "blank_line", "line")
AUTO_PEEK_LINES = 10000
"""--text_documents=auto reads a file as blank-line-separated documents when one of its first
AUTO_PEEK_LINES lines is blank, else as one document a line."""

_EXTENSIONS = (
    (re.compile(r"\.xml(\.bz2|\.gz)?$"), "wiki"),
    (re.compile(r"\.(jsonl|json|ndjson)(\.bz2|\.gz)?$"), "jsonl"),
    (re.compile(r"\.(csv|tsv)(\.bz2|\.gz)?$"), "csv"),
    (re.compile(r"\.txt(\.bz2|\.gz)?$"), "text"),
)


def format_of(path, fmt):
    """The format of ``path``: ``fmt`` unless it is "auto", else guessed from the name."""
    if fmt != "auto":
        return fmt
    for pattern, name in _EXTENSIONS:
        if pattern.search(path.lower()):
            return name
    raise cli.InputError("%s: cannot tell the format from the file name; pass --format=%s"
                         % (path, "|".join(FORMATS)))


class Bz2Streams(io.RawIOBase):
    """The decompressed bytes of every bz2 stream of a file in turn (a multistream dump,
    pbzip2's output). Corrupt data anywhere raises OSError: the standard library's reader
    takes a corrupt stream after the first for trailing garbage and stops without a word."""

    CHUNK = 1 << 16

    def __init__(self, raw):
        super(Bz2Streams, self).__init__()
        self.raw = raw
        self.decompressor = bz2.BZ2Decompressor()
        self.started = False

    def readable(self):
        return True

    def readinto(self, buffer):
        while True:
            data = self._next(len(buffer))
            if data is None:
                return 0
            if data:
                buffer[:len(data)] = data
                return len(data)

    def _next(self, size):
        """Up to ``size`` decompressed bytes (b"" when more input is needed), None at the
        clean end of the last stream."""
        decompressor = self.decompressor
        if decompressor.eof:
            rest = decompressor.unused_data or self.raw.read(self.CHUNK)
            if not rest:
                return None
            self.decompressor = bz2.BZ2Decompressor()
            return self.decompressor.decompress(rest, size)
        if decompressor.needs_input:
            chunk = self.raw.read(self.CHUNK)
            if not chunk:
                if not self.started:
                    return None  # an empty file
                raise EOFError("Compressed file ended before the end-of-stream marker was "
                               "reached")
            self.started = True
            return decompressor.decompress(chunk, size)
        return decompressor.decompress(b"", size)

    def close(self):
        self.raw.close()
        super(Bz2Streams, self).close()


def open_binary(path):
    """A binary stream of the file's bytes, decompressed for .bz2 and .gz."""
    try:
        if path.endswith(".bz2"):
            return io.BufferedReader(Bz2Streams(io.open(path, "rb")), Bz2Streams.CHUNK)
        if path.endswith(".gz"):
            return gzip.open(path, "rb")
        return io.open(path, "rb")
    except (IOError, OSError) as e:
        raise cli.InputError("%s: cannot be read (%s); check the path"
                             % (path, cli.error_reason(e)))


class ByteCounter(object):
    """Wraps a binary stream; counts the (decompressed) bytes read for progress and stats."""

    def __init__(self, stream, on_bytes=None):
        self.stream = stream
        self.bytes = 0
        self.on_bytes = on_bytes

    def read(self, size=-1):
        # read1: a truncated compressed stream first returns what it holds, then fails.
        data = self.stream.read1(size)
        self.bytes += len(data)
        if self.on_bytes is not None:
            self.on_bytes(len(data))
        return data

    def __iter__(self):
        for line in self.stream:
            self.bytes += len(line)
            if self.on_bytes is not None:
                self.on_bytes(len(line))
            yield line


STREAM_ERRORS = (EOFError, OSError, zlib.error)
"""What reading a truncated or corrupt .bz2/.gz raises (gzip.BadGzipFile is an OSError)."""

CHECK_AHEAD_BYTES = 64 << 20
"""Bytes a compressed stream is read on past text that is not UTF-8, to tell a corrupt
file (its check sum fails within a block: at most 900 KB of input for bz2) from text in
another encoding."""


def _error_ahead(stream):
    """The error reading on in ``stream`` raises within CHECK_AHEAD_BYTES, or None."""
    left = CHECK_AHEAD_BYTES
    try:
        while left > 0:
            data = stream.read(min(left, 1 << 20))
            if not data:
                return None
            left -= len(data)
    except STREAM_ERRORS as e:
        return e
    return None


def _broken_stream(path, error, where):
    """The InputError of a compressed stream that ends early or is corrupt."""
    kind = "bz2" if path.endswith(".bz2") else "gzip"
    return cli.InputError("%s: the %s file is truncated or corrupt (%s) %s; download or copy "
                          "it again" % (path, kind, cli.error_reason(error), where))


def decoded_lines(path, on_bytes=None):
    """Yields (line number, text) of a UTF-8 file, line ends removed (a BOM at the start too).

    Not UTF-8 and a truncated compressed stream are InputErrors naming path:line.
    """
    with open_binary(path) as raw:
        counter = ByteCounter(raw, on_bytes)
        number = 0
        try:
            for number, line in enumerate(counter, start=1):
                try:
                    text = reading.decode_line(line, path, number)
                except cli.InputError:
                    broken = _error_ahead(raw) if path.endswith((".bz2", ".gz")) else None
                    if broken is not None:
                        raise _broken_stream(path, broken, "at line %d" % number)
                    raise
                if number == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                yield number, text.rstrip("\r\n")
        except STREAM_ERRORS as e:
            raise _broken_stream(path, e, "after line %d" % number)


def read_text(path, documents="auto", on_bytes=None):
    """Plain text: one document a line, or documents separated by blank lines (each line a
    paragraph). ``documents`` is "line", "blank_line" or "auto" (AUTO_PEEK_LINES)."""
    if documents == "auto":
        documents = "line"
        for number, line in decoded_lines(path):
            if not line.strip():
                documents = "blank_line"
                break
            if number >= AUTO_PEEK_LINES:
                break
    paragraphs, start = [], 0
    for number, line in decoded_lines(path, on_bytes):
        if not line.strip():
            if paragraphs:
                yield RawDocument("%s:%d" % (path, start), paragraphs)
                paragraphs = []
            continue
        if documents == "line":
            yield RawDocument("%s:%d" % (path, number), [line])
            continue
        if not paragraphs:
            start = number
        paragraphs.append(line)
    if paragraphs:
        yield RawDocument("%s:%d" % (path, start), paragraphs)


def _paragraphs(text):
    return [line for line in text.splitlines() if line.strip()]


def read_jsonl(path, field, on_bytes=None):
    """JSON lines: the string ``field`` of every object is a document (its lines are its
    paragraphs); blank lines are skipped."""
    for number, line in decoded_lines(path, on_bytes):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise cli.InputError("%s:%d: not a JSON object (%s); fix or remove the line"
                                 % (path, number, e))
        if not isinstance(record, dict) or field not in record:
            found = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
            raise cli.InputError("%s:%d: no field '%s' (found: %s); pass --text_field"
                                 % (path, number, field, found))
        value = record[field]
        if value is None:
            continue
        if not isinstance(value, str):
            raise cli.InputError("%s:%d: field '%s' is not a string (%s); pass the text field "
                                 "as --text_field" % (path, number, field,
                                                      type(value).__name__))
        yield RawDocument("%s:%d" % (path, number), _paragraphs(value))


def csv_delimiter(path, delimiter):
    """The delimiter: ``delimiter`` when given, else a tab for .tsv files and a comma."""
    if delimiter:
        return "\t" if delimiter in ("\\t", "tab") else delimiter
    return "\t" if re.search(r"\.tsv(\.bz2|\.gz)?$", path.lower()) else ","


def check_delimiter(delimiter):
    """InputError unless --delimiter is unset, one character (not a quote or line break),
    or \\t / tab."""
    if not delimiter:
        return
    char = csv_delimiter("", delimiter)
    if len(char) != 1 or char in "\"\r\n":
        raise cli.InputError("--delimiter=%s: must be one character other than a quote or a "
                             "line break (or \\t / tab for a tab); pass e.g. --delimiter=';'"
                             % delimiter)


def read_csv(path, column, delimiter=None, on_bytes=None):
    """CSV/TSV with a header line: the cell of ``column`` in every row is a document.

    Quoted cells may hold delimiters and line breaks (RFC 4180). The quoting is read
    strictly: a quote left open to the end of the file (it would swallow every later row)
    or text after a closing quote is an InputError naming the line where the row starts.
    """
    lines = ((number, text + "\n") for number, text in decoded_lines(path, on_bytes))
    position = [0]

    def text_lines():
        for number, text in lines:
            position[0] = number
            yield text

    reader = csv.reader(text_lines(), delimiter=csv_delimiter(path, delimiter), strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        if column not in header:
            raise cli.InputError("%s:1: no column '%s' in the header (found: %s); pass --column"
                                 % (path, column, ", ".join(header)))
        index = header.index(column)
        while True:
            start = position[0] + 1
            row = next(reader, None)
            if row is None:
                return
            if not row:
                continue
            if index >= len(row):
                raise cli.InputError("%s:%d: the row has %d fields, the header %d; fix or remove "
                                     "the row" % (path, position[0], len(row), len(header)))
            yield RawDocument("%s:%d" % (path, start), _paragraphs(row[index]))
    except csv.Error as e:
        if "end of data" in str(e):
            raise cli.InputError("%s:%d: a quote opened in this row is never closed (the file "
                                 "ends inside it, at line %d); close the quote, or double a "
                                 "quote inside a cell (\"\")" % (path, start, position[0]))
        raise cli.InputError("%s:%d: not valid CSV (%s); fix the quoting of the row"
                             % (path, position[0], e))


def read_wiki(path, counts, on_bytes=None, on_warning=None):
    """A MediaWiki XML dump: one document per article (see krbert.corpus.wikitext).

    ``counts`` (a Counter) receives pages, redirects, non-article and disambiguation pages.
    A dump that breaks off keeps the pages read before; ``on_warning(line)`` says where.
    """
    from xml.etree import ElementTree

    with open_binary(path) as raw:
        counter = ByteCounter(raw, on_bytes)
        parser = ElementTree.iterparse(counter, events=("start", "end"))
        root = None
        try:
            for event, element in parser:
                if root is None:
                    root = element
                if event != "end" or wikitext.local_name(element.tag) != "page":
                    continue
                page = wikitext.read_page(element)
                root.clear()
                document = wikitext.page_document(page, counts)
                if document is not None:
                    yield RawDocument("%s: page '%s'" % (path, page.title), document)
        except ElementTree.ParseError as e:
            line, column = e.position
            _stop(on_warning, "%s:%d:%d: the XML breaks off here (%s); kept the %d pages "
                  "before it" % (path, line, column, e, counts["pages"]))
        except STREAM_ERRORS as e:
            _stop(on_warning, "%s: the compressed file ends early or is corrupt (%s) after %d "
                  "bytes of XML; kept the %d pages before it; download it again for the rest"
                  % (path, cli.error_reason(e), counter.bytes, counts["pages"]))


def _stop(on_warning, line):
    if on_warning is None:
        raise cli.InputError(line)
    on_warning(line)


def read_documents(path, fmt, options, counts, on_bytes=None, on_warning=None):
    """The documents of one input file in format ``fmt``.

    options: text_documents, text_field, column, delimiter (build_corpus.py's flags).
    """
    if fmt == "text":
        return read_text(path, options["text_documents"], on_bytes)
    if fmt == "jsonl":
        return read_jsonl(path, options["text_field"], on_bytes)
    if fmt == "csv":
        if not options.get("column"):
            raise cli.InputError("%s: a CSV/TSV input needs --column (the text column's name)"
                                 % path)
        return read_csv(path, options["column"], options.get("delimiter"), on_bytes)
    if fmt == "wiki":
        return read_wiki(path, counts, on_bytes, on_warning)
    raise cli.InputError("--format=%s: unknown; use auto or one of %s" % (fmt, ", ".join(FORMATS)))


def file_size(path):
    """Bytes of the file on disk (compressed size for .bz2/.gz)."""
    return os.path.getsize(path)
