"""Files, local or gs://: inputs, atomic outputs, line and TSV reading, hashing.

Every output a script leaves is complete or absent: it is written to a temporary name in
the same folder (unique to the writing process, so two runs into one folder do not collide)
and renamed onto its final name only once it has been written and closed. A run that dies
leaves only a temporary file, which `remove_stale_temporaries` clears on the next run.

Inputs are found once (`glob_input_files`, `check_input_file`), outputs are checked before
the work starts (`check_writable`, `check_outputs_spare_inputs`), and a problem the user
can fix is a one-line cli.InputError naming the file. gs:// paths on a machine that cannot
reach Cloud Storage fail within seconds (`check_gcs_reachable`).
"""

import contextlib
import hashlib
import io
import os
import re
import socket
import threading
import time
from urllib.parse import urlparse

from tf_compat import tf

import cli

TMP_MARK = ".tmp-"
_TMP_PATTERN = re.compile(re.escape(TMP_MARK) + r"[^/]+\.\d+$")
FOREIGN_TEMPORARY_SECONDS = 3600
"""A temporary of another host is stale once it has not changed for this long."""
READ_CHUNK = 1 << 20


def error_reason(error):
    """The short text of an OSError or a TensorFlow OpError (str() of anything else), for
    one-line messages."""
    return getattr(error, "message", None) or getattr(error, "strerror", None) or str(error)


def _is_remote(path):
    return "://" in path


# ---------------------------------------------------------------------------------------------
# Inputs.

def _is_local_directory(path):
    return not _is_remote(path) and os.path.isdir(path)


def glob_input_files(patterns, what="--input_file"):
    """Files of comma-separated globs (gs:// too): sorted per glob, each file once.

    Local folders a glob matches are left out (gs:// matches are not stat'ed one by one).
    Raises InputError naming `what` (the flag) and the pattern when a glob matches no file,
    or names only a folder.
    """
    files = []
    for pattern in [p.strip() for p in (patterns or "").split(",") if p.strip()]:
        try:
            matches = sorted(tf.io.gfile.glob(pattern))
        except tf.errors.NotFoundError:  # a missing folder, on TF 1.x
            matches = []
        except tf.errors.OpError as e:
            raise cli.InputError("%s: cannot list '%s' (%s); check the path"
                                 % (what, pattern, error_reason(e)))
        kept = [m for m in matches if not _is_local_directory(m)]
        if matches and not kept:
            raise cli.InputError("%s: '%s' is a folder, not a file; pass the files in it "
                                 "(a glob such as %s/*)" % (what, pattern, pattern.rstrip("/")))
        if not kept:
            raise cli.InputError("%s: '%s' matches no file; check the path or the glob"
                                 % (what, pattern))
        files.extend(m for m in kept if m not in files)
    if not files:
        raise cli.InputError("%s is empty; give one or more files or globs" % what)
    return files


def check_input_file(path, flag=None):
    """InputError unless `path` is an existing file (not a folder); `flag` names it."""
    if not path:
        raise cli.InputError("%s is missing; pass a file" % flag)
    what = flag + " " if flag else ""
    try:
        if tf.io.gfile.isdir(path):
            raise cli.InputError("%s: %sis a folder, not a file; pass a file" % (path, what))
        if not tf.io.gfile.exists(path):
            raise cli.InputError("%s: %snot found; check the path" % (path, what))
    except tf.errors.OpError as e:
        raise cli.InputError("%s: %scannot be read (%s); check the path" % (path, what,
                                                                              error_reason(e)))


def _identity(path):
    """What names one file: (device, inode) of an existing local file (links followed),
    else the normalized path."""
    if _is_remote(path):
        return path.rstrip("/")
    path = os.path.realpath(path)  # "sub/.." too: sub is made before the output is written
    try:
        info = os.stat(path)
        return (info.st_dev, info.st_ino)
    except OSError:
        return path


def check_outputs_spare_inputs(outputs, inputs, output_flag, input_flag="--input_file"):
    """InputError when an output would be written over one of the inputs.

    Args:
      outputs: every path the run will write (final names).
      inputs: every file the run reads.
    """
    inputs_by_identity = dict((_identity(path), path) for path in inputs)
    for output in outputs:
        path = inputs_by_identity.get(_identity(output))
        if path is not None:
            raise cli.InputError(
                "%s: %s would write over this input (%s); write the output elsewhere"
                % (path, output_flag, input_flag))


def file_sha256(path):
    """Hex sha256 of a file's bytes (gs:// too)."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as reader:
        for chunk in iter(lambda: reader.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Reading lines and TSV files.

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
    with tf.io.gfile.GFile(path, "rb") as reader:
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


def _row_for_message(line):
    line = line.rstrip("\r\n")
    return repr(line if len(line) <= 200 else line[:200] + "...")


def _open_binary(path):
    """Local files through io (fast), anything else (gs://) through tf.io.gfile."""
    if _is_remote(path):
        return tf.io.gfile.GFile(path, "rb")
    return io.open(path, "rb")


def _decode_row(raw, path, number):
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
    check_input_file(path)
    quote_rounds = quote_rounds or {}
    with _open_binary(path) as handle:
        header_line = _decode_row(handle.readline(), path, 1)
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
            line = _decode_row(raw, path, number)
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


# ---------------------------------------------------------------------------------------------
# Outputs.

def temporary_name(path, pid=None):
    """`path` plus a suffix unique to a process (this one by default): PATH.tmp-HOST.PID."""
    return "%s%s%s.%d" % (path, TMP_MARK, socket.gethostname().split(".")[0],
                          os.getpid() if pid is None else pid)


def is_temporary_name(path):
    """True for a name made by `temporary_name`."""
    return bool(_TMP_PATTERN.search(path))


def write_error(path, error):
    """The InputError for an output that could not be written (full disk, no permission)."""
    return cli.InputError("%s: could not be written (%s); check the folder exists, is writable "
                          "and has free space" % (path, error_reason(error)))


def check_writable(paths, flag):
    """Creates the folders of `paths` and writes a probe file in each; InputError if not.

    Run before a long step, so an unwritable output is found at the start. A path that is
    an existing folder is refused too.
    """
    for path in paths:
        if tf.io.gfile.isdir(path):
            raise cli.InputError("%s=%s is a folder; pass a file path" % (flag, path))
    for folder in sorted(set(os.path.dirname(path) or "." for path in paths)):
        probe = temporary_name(os.path.join(folder, ".write_probe"))
        try:
            tf.io.gfile.makedirs(folder)
            with tf.io.gfile.GFile(probe, "w") as writer:
                writer.write("")
            tf.io.gfile.remove(probe)
        except (tf.errors.OpError, OSError) as e:
            raise cli.InputError("%s: cannot write to this folder (%s); choose a writable %s"
                                 % (folder, error_reason(e), flag))


def commit(tmp_path, path):
    """Renames a finished temporary file onto its final name (replacing what is there)."""
    try:
        tf.io.gfile.rename(tmp_path, path, overwrite=True)
    except (tf.errors.OpError, OSError) as e:
        discard(tmp_path)
        raise write_error(path, e)


def discard(tmp_path):
    """Removes a file if it is there; never raises."""
    try:
        if tf.io.gfile.exists(tmp_path):
            tf.io.gfile.remove(tmp_path)
    except (tf.errors.OpError, OSError):
        pass


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Opens a writer on a temporary name; on success renames it to `path`.

    On any error the temporary file is removed and `path` is left as it was; a full disk or
    an unwritable folder becomes a one-line InputError naming `path`.

        with file_utils.atomic_write(out_path) as writer:
            writer.write(text)
    """
    with atomic_writer(path, lambda tmp_path: tf.io.gfile.GFile(tmp_path, mode)) as writer:
        yield writer


@contextlib.contextmanager
def atomic_writer(path, open_writer):
    """`atomic_write` for any writer: ``open_writer(tmp_path)`` returns it (with close()).

        with file_utils.atomic_writer(path, tf.io.TFRecordWriter) as writer:
            writer.write(record)
    """
    with staged(path) as tmp_path:
        writer = open_writer(tmp_path)
        try:
            yield writer
        finally:
            writer.close()


@contextlib.contextmanager
def staged(path):
    """Yields the temporary name of `path`; renames it onto `path` when the block succeeds.

    The block writes (and closes) the temporary file itself. On any error the temporary is
    removed and `path` is left as it was; a write error becomes a one-line InputError.
    """
    tmp_path = temporary_name(path)
    try:
        yield tmp_path
    except (tf.errors.OpError, OSError) as e:
        discard(tmp_path)
        raise write_error(path, e)
    except BaseException:
        discard(tmp_path)
        raise
    commit(tmp_path, path)


def write_text_atomic(path, text):
    """Writes `text` (str) to `path` atomically."""
    with atomic_write(path, "w") as writer:
        writer.write(text)


def remove_stale_temporaries(folder, prefix=""):
    """Removes temporary files that runs which died left in `folder` (names starting `prefix`,
    a string or a tuple of them).

    A temporary of a process that is still running on this host is left alone, and so is
    one of another host that changed in the last FOREIGN_TEMPORARY_SECONDS (a run on
    another machine writing into the same gs:// folder). Returns the removed paths.
    """
    try:
        if not tf.io.gfile.isdir(folder):
            return []
        names = tf.io.gfile.listdir(folder)
    except (tf.errors.OpError, OSError):
        return []
    host = socket.gethostname().split(".")[0]
    removed = []
    for name in names:
        name = name.rstrip("/")
        if not (name.startswith(prefix) and is_temporary_name(name)):
            continue
        owner, pid = name.rsplit(TMP_MARK, 1)[1].rsplit(".", 1)
        path = os.path.join(folder, name)
        if owner == host and _process_alive(int(pid)):
            continue
        if owner != host and _seconds_unchanged(path) < FOREIGN_TEMPORARY_SECONDS:
            continue
        discard(path)
        removed.append(path)
    return removed


def remove_stale_temporaries_of(paths):
    """`remove_stale_temporaries` for outputs: their folders, temporaries of their names."""
    by_folder = {}
    for path in paths:
        by_folder.setdefault(os.path.dirname(path) or ".", set()).add(os.path.basename(path))
    removed = []
    for folder, names in sorted(by_folder.items()):
        removed += remove_stale_temporaries(folder, tuple(sorted(names)))
    return removed


def _seconds_unchanged(path):
    try:
        return time.time() - tf.io.gfile.stat(path).mtime_nsec / 1e9
    except (tf.errors.OpError, OSError):
        return 0.0


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_file_flag(flag, path, what):
    """Raises InputError unless ``path`` names a file (not missing, not a folder)."""
    if not path:
        raise cli.InputError("--%s is required; give %s" % (flag, what))
    if tf.io.gfile.isdir(path):
        raise cli.InputError("--%s=%s is a folder; give %s" % (flag, path, what))
    if not tf.io.gfile.exists(path):
        raise cli.InputError("--%s=%s not found; give %s" % (flag, path, what))


GCS_HOST = "www.googleapis.com"  # where TensorFlow's gs:// file system sends its requests


def check_gcs_reachable(paths, timeout=5.0):
    """Raises InputError within ``timeout`` seconds when a gs:// path is among ``paths``
    (None or comma-separated globs too) and Cloud Storage, or the https proxy, does not
    answer; TensorFlow itself would retry for minutes before failing."""
    gcs = [path for path in paths if path and "gs://" in path]
    if not gcs:
        return
    host, port, via = GCS_HOST, 443, ""
    proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if proxy:
        parsed = urlparse(proxy if "://" in proxy else "http://" + proxy)
        host, port, via = parsed.hostname, parsed.port or 80, " through the https proxy"
    failure = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except (OSError, ValueError) as e:
            failure.append(getattr(e, "strerror", None) or str(e))

    prober = threading.Thread(target=connect)
    prober.daemon = True
    prober.start()
    prober.join(timeout)
    if prober.is_alive():
        failure.append("no answer within %g s" % timeout)
    if failure:
        raise cli.InputError("%s: Cloud Storage cannot be reached%s (%s:%d: %s); check the "
                             "network, or use local paths" % (gcs[0], via, host, port, failure[0]))
