"""Outputs written whole: a temporary name in the same folder, then a rename.

Every output a script leaves is complete or absent: it is written to a temporary name in
the same folder (unique to the writing process, so two runs into one folder do not collide)
and renamed onto its final name only once it has been written and closed. A folder of
outputs (a converted model, a SavedModel) is filled under a temporary name and renamed
whole (``staged_folder``), never over files that are there. A run that dies
leaves only a temporary file, which `remove_stale_temporaries` clears on the next run.
Outputs are checked before the work starts (`check_writable`).

Local paths go through the standard library; only gs:// paths import TensorFlow (for
tf.io.gfile), so tools without TensorFlow (build_corpus.py) write their outputs here too.
"""

import contextlib
import io
import os
import re
import shutil
import socket
import sys
import time

from krbert import cli

TMP_MARK = ".tmp-"


_TMP_PATTERN = re.compile(re.escape(TMP_MARK) + r"[^/]+\.\d+$")


FOREIGN_TEMPORARY_SECONDS = 3600


"""A temporary of another host is stale once it has not changed for this long."""


def _tf():
    """TensorFlow's v1 API, imported on first use (for a gs:// path)."""
    from krbert.tf_compat import tf
    return tf


def _is_remote(path):
    return "://" in path


def _errors(path):
    """What a file operation on ``path`` (or a TensorFlow writer on it) raises: OSError, and
    TensorFlow's OpError for gs:// paths or once the process has loaded TensorFlow."""
    if _is_remote(path) or "krbert.tf_compat" in sys.modules:
        return (OSError, _tf().errors.OpError)
    return (OSError,)


def _isdir(path):
    return _tf().io.gfile.isdir(path) if _is_remote(path) else os.path.isdir(path)


def _exists(path):
    return _tf().io.gfile.exists(path) if _is_remote(path) else os.path.lexists(path)


def _remove(path):
    if _is_remote(path):
        _tf().io.gfile.remove(path)
    else:
        os.remove(path)


def _open(path, mode):
    """A writer on ``path``: tf.io.gfile.GFile for gs://, io.open for local files (text
    modes write UTF-8, line ends as given)."""
    if _is_remote(path):
        return _tf().io.gfile.GFile(path, mode)
    if "b" in mode:
        return io.open(path, mode)
    return io.open(path, mode, encoding="utf-8", newline="")


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
                          "and has free space" % (path, cli.error_reason(error)))


def check_writable(paths, flag):
    """Creates the folders of `paths` and writes a probe file in each; InputError if not.

    Run before a long step, so an unwritable output is found at the start. A path that is
    an existing folder is refused too.
    """
    for path in paths:
        if _isdir(path):
            raise cli.InputError("%s=%s is a folder; pass a file path" % (flag, path))
    for folder in sorted(set(os.path.dirname(path) or "." for path in paths)):
        probe = temporary_name(os.path.join(folder, ".write_probe"))
        try:
            if _is_remote(folder):
                _tf().io.gfile.makedirs(folder)
            else:
                os.makedirs(folder, exist_ok=True)
            with _open(probe, "w") as writer:
                writer.write("")
            _remove(probe)
        except _errors(folder) as e:
            raise cli.InputError("%s: cannot write to this folder (%s); choose a writable %s"
                                 % (folder, cli.error_reason(e), flag))


def commit(tmp_path, path):
    """Renames a finished temporary file onto its final name (replacing what is there)."""
    try:
        if _is_remote(path):
            _tf().io.gfile.rename(tmp_path, path, overwrite=True)
        else:
            os.replace(tmp_path, path)
    except _errors(path) as e:
        discard(tmp_path)
        raise write_error(path, e)


def discard(tmp_path):
    """Removes a file or a folder (with what it holds) if it is there; never raises."""
    try:
        if _isdir(tmp_path):
            if _is_remote(tmp_path):
                _tf().io.gfile.rmtree(tmp_path)
            else:
                shutil.rmtree(tmp_path)
        elif _exists(tmp_path):
            _remove(tmp_path)
    except _errors(tmp_path):
        pass


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Opens a writer on a temporary name; on success renames it to `path`.

    On any error the temporary file is removed and `path` is left as it was; a full disk or
    an unwritable folder becomes a one-line InputError naming `path`.

        with atomic.atomic_write(out_path) as writer:
            writer.write(text)
    """
    with atomic_writer(path, lambda tmp_path: _open(tmp_path, mode)) as writer:
        yield writer


@contextlib.contextmanager
def atomic_writer(path, open_writer):
    """`atomic_write` for any writer: ``open_writer(tmp_path)`` returns it (with close()).

        with atomic.atomic_writer(path, tf.io.TFRecordWriter) as writer:
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
    with _discarded_on_error(tmp_path, path):
        yield tmp_path
    commit(tmp_path, path)


@contextlib.contextmanager
def _discarded_on_error(tmp_path, path):
    """Removes ``tmp_path`` when the block fails; a write error becomes a one-line InputError
    naming ``path``."""
    try:
        yield
    except _errors(path) as e:
        discard(tmp_path)
        raise write_error(path, e)
    except BaseException:
        discard(tmp_path)
        raise


def check_folder_free(path, flag):
    """InputError unless ``path`` is missing or an empty folder (a whole folder can go there
    without replacing anything)."""
    try:
        if not _exists(path):
            return
        if not _isdir(path):
            raise cli.InputError("%s=%s is a file; give a new folder" % (flag, path))
        listed = _tf().io.gfile.listdir(path) if _is_remote(path) else os.listdir(path)
        names = sorted(name.rstrip("/") for name in listed)
    except _errors(path) as e:
        raise cli.InputError("%s=%s cannot be read (%s); check the path" % (
            flag, path, cli.error_reason(e)))
    if names:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise cli.InputError("%s=%s already holds %d file(s) (%s); give a new or empty folder "
                             "(nothing there is replaced)" % (flag, path, len(names), shown))


@contextlib.contextmanager
def staged_folder(path, flag):
    """Yields a new temporary folder beside ``path`` (PATH.tmp-HOST.PID) for the block to
    fill; renames it onto ``path`` when the block succeeds.

    ``path`` must be missing or an empty folder, before and after the block
    (``check_folder_free``): nothing is replaced. On any error the temporary folder is
    removed; a write error (full disk, no permission) becomes a one-line InputError naming
    ``path``. A folder a killed run left goes with ``remove_stale_temporaries``.
    """
    path = path.rstrip("/") or "/"
    check_folder_free(path, flag)
    tmp_path = temporary_name(path)
    discard(tmp_path)
    with _discarded_on_error(tmp_path, path):
        if _is_remote(tmp_path):
            _tf().io.gfile.makedirs(tmp_path)
        else:
            os.makedirs(tmp_path)
        yield tmp_path
        check_folder_free(path, flag)  # filled by another run meanwhile
        _rename_folder(tmp_path, path)


def _rename_folder(tmp_path, path):
    """Renames a folder onto ``path`` (missing, or an empty folder replaced at once)."""
    if _is_remote(path):
        _tf().io.gfile.rename(tmp_path, path, overwrite=False)
    else:
        os.rename(tmp_path, path)


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
        if not _isdir(folder):
            return []
        names = _tf().io.gfile.listdir(folder) if _is_remote(folder) else os.listdir(folder)
    except _errors(folder):
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
        if _is_remote(path):
            return time.time() - _tf().io.gfile.stat(path).mtime_nsec / 1e9
        return time.time() - os.stat(path).st_mtime
    except _errors(path):
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
