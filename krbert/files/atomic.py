"""Outputs written whole: a temporary name in the same folder, then a rename.

Every output a script leaves is complete or absent: it is written to a temporary name in
the same folder (unique to the writing process, so two runs into one folder do not collide)
and renamed onto its final name only once it has been written and closed. A folder of
outputs (a converted model, a SavedModel) is filled under a temporary name and renamed
whole (``staged_folder``), never over files that are there. A run that dies
leaves only a temporary file, which `remove_stale_temporaries` clears on the next run.
Outputs are checked before the work starts (`check_writable`).

Files go through krbert.files.fs: local paths through the standard library, gs:// ones
through tf.io.gfile, so tools without TensorFlow (build_corpus.py) write their outputs here
too. A name is taken when ``fs.lexists`` says so: a broken link at an output's name is
replaced or removed like a file, never taken for a free name.
"""

import contextlib
import os
import re
import socket
import time

from krbert import cli
from krbert.files import fs

TMP_MARK = ".tmp-"
_TMP_PATTERN = re.compile(re.escape(TMP_MARK) + r"[^/]+\.\d+$")

FOREIGN_TEMPORARY_SECONDS = 3600
"""A temporary of another host is stale once it has not changed for this long."""


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
        if fs.isdir(path):
            raise cli.InputError("%s=%s is a folder; pass a file path" % (flag, path))
    for folder in sorted(set(os.path.dirname(path) or "." for path in paths)):
        probe = temporary_name(os.path.join(folder, ".write_probe"))
        try:
            fs.makedirs(folder)
            with fs.open_file(probe, "w") as writer:
                writer.write("")
            fs.remove(probe)
        except fs.errors(folder) as e:
            raise cli.InputError("%s: cannot write to this folder (%s); choose a writable %s"
                                 % (folder, cli.error_reason(e), flag))


def commit(tmp_path, path):
    """Renames a finished temporary file onto its final name (replacing what is there)."""
    try:
        fs.rename(tmp_path, path, overwrite=True)
    except fs.errors(path) as e:
        discard(tmp_path)
        raise write_error(path, e)


def discard(tmp_path):
    """Removes a file or a folder (with what it holds) if it is there; never raises."""
    try:
        if fs.isdir(tmp_path):
            fs.rmtree(tmp_path)
        elif fs.lexists(tmp_path):
            fs.remove(tmp_path)
    except fs.errors(tmp_path):
        pass


@contextlib.contextmanager
def atomic_write(path, mode="w"):
    """Opens a writer on a temporary name; on success renames it to `path`.

    On any error the temporary file is removed and `path` is left as it was; a full disk or
    an unwritable folder becomes a one-line InputError naming `path`.

        with atomic.atomic_write(out_path) as writer:
            writer.write(text)
    """
    with atomic_writer(path, lambda tmp_path: fs.open_file(tmp_path, mode)) as writer:
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
    except fs.errors(path) as e:
        discard(tmp_path)
        raise write_error(path, e)
    except BaseException:
        discard(tmp_path)
        raise


def check_folder_free(path, flag):
    """InputError unless ``path`` is missing or an empty folder (a whole folder can go there
    without replacing anything)."""
    try:
        if not fs.lexists(path):
            return
        if not fs.isdir(path):
            raise cli.InputError("%s=%s is a file; give a new folder" % (flag, path))
        names = sorted(fs.listdir(path))
    except fs.errors(path) as e:
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
        fs.makedirs(tmp_path)
        yield tmp_path
        check_folder_free(path, flag)  # filled by another run meanwhile
        fs.rename(tmp_path, path, overwrite=False)  # an empty folder is replaced at once


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
        if not fs.isdir(folder):
            return []
        names = fs.listdir(folder)
    except fs.errors(folder):
        return []
    host = socket.gethostname().split(".")[0]
    removed = []
    for name in names:
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
        return time.time() - fs.mtime_ns(path) / 1e9
    except fs.errors(path):
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
