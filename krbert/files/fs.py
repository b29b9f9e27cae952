"""One set of file operations for local and remote paths: the standard library for a local
path, tf.io.gfile for a path with a scheme (gs://, or ram:// in tests).

TensorFlow is imported only for a remote path (or, for its error types, once the process
has loaded it anyway), so tools without TensorFlow (build_corpus.py) read and write local
files through here too. The other modules of krbert.files go through these functions
rather than test ``"://" in path`` themselves.

Two questions of presence, for two roles:

* ``exists``: is there something to read? Links are followed, so a broken link is absent:
  an input that is a broken link is "not found" at once, not a file whose reading fails
  later.
* ``lexists``: is the name taken? A broken link counts: a name about to be removed, renamed
  onto or claimed as a new output folder must not look free while a link holds it (the
  rename would fail half-way, the removal would leave the link behind).

Remote file systems have no links: there both are gfile.exists.
"""

import io
import os
import shutil
import sys


def tf():
    """TensorFlow's v1 API, imported on first use."""
    from krbert.tf_compat import tf as tf_v1
    return tf_v1


def is_remote(path):
    """Whether ``path`` has a scheme (gs://...), so it goes through tf.io.gfile."""
    return "://" in path


def errors(path):
    """What an operation on ``path`` raises when the file system refuses it: OSError, and
    TensorFlow's OpError for a remote path or once the process has loaded TensorFlow (its
    writers raise it for local paths too)."""
    if is_remote(path) or "krbert.tf_compat" in sys.modules:
        return (OSError, tf().errors.OpError)
    return (OSError,)


def isdir(path):
    """Whether ``path`` is a folder (a link to one too)."""
    return tf().io.gfile.isdir(path) if is_remote(path) else os.path.isdir(path)


def exists(path):
    """Whether there is something to read at ``path``: a broken link is absent."""
    return tf().io.gfile.exists(path) if is_remote(path) else os.path.exists(path)


def lexists(path):
    """Whether the name ``path`` is taken: a broken link is there."""
    return tf().io.gfile.exists(path) if is_remote(path) else os.path.lexists(path)


def listdir(path):
    """The names in folder ``path`` (a remote sub-folder's name without its trailing /)."""
    if is_remote(path):
        return [name.rstrip("/") for name in tf().io.gfile.listdir(path)]
    return os.listdir(path)


def makedirs(path):
    """Creates folder ``path`` and its parents; nothing when it is there."""
    if is_remote(path):
        tf().io.gfile.makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def remove(path):
    """Removes the file ``path``."""
    if is_remote(path):
        tf().io.gfile.remove(path)
    else:
        os.remove(path)


def rmtree(path):
    """Removes the folder ``path`` with everything in it."""
    if is_remote(path):
        tf().io.gfile.rmtree(path)
    else:
        shutil.rmtree(path)


def rename(src, dst, overwrite):
    """Renames ``src`` to ``dst``. With ``overwrite`` a file at ``dst`` is replaced; without
    it a remote ``dst`` that exists is an error (a local empty folder is still replaced, as
    POSIX rename does)."""
    if is_remote(dst):
        tf().io.gfile.rename(src, dst, overwrite=overwrite)
    elif overwrite:
        os.replace(src, dst)
    else:
        os.rename(src, dst)


def mtime_ns(path):
    """When ``path`` last changed, in nanoseconds since the epoch."""
    if is_remote(path):
        return tf().io.gfile.stat(path).mtime_nsec
    return os.stat(path).st_mtime_ns


def open_file(path, mode):
    """A file object on ``path``: tf.io.gfile.GFile when remote, else io.open (text modes
    read and write UTF-8, with line ends as they are)."""
    if is_remote(path):
        return tf().io.gfile.GFile(path, mode)
    if "b" in mode:
        return io.open(path, mode)
    return io.open(path, mode, encoding="utf-8", newline="")
