"""Files, local or gs://: atomic writes under per-process temporary names.

Every output a script leaves is complete or absent: it is written to a temporary name in
the same folder (unique to the writing process, so two runs into one folder do not collide)
and renamed onto its final name only once it has been written and closed. A run that dies
leaves only a temporary file, which `remove_stale_temporaries` clears on the next run.

Also the checks on paths every script makes first: a flag naming a file that is a folder
or missing, and gs:// paths on a machine that cannot reach Cloud Storage.
"""

import contextlib
import os
import re
import socket
import threading
from urllib.parse import urlparse

from tf_compat import tf

import cli

TMP_MARK = ".tmp-"
_TMP_PATTERN = re.compile(re.escape(TMP_MARK) + r"[^/]+\.\d+$")


def temporary_name(path):
    """`path` plus a suffix unique to this process: PATH.tmp-HOST.PID."""
    return "%s%s%s.%d" % (path, TMP_MARK, socket.gethostname().split(".")[0], os.getpid())


def is_temporary_name(path):
    """True for a name made by `temporary_name`."""
    return bool(_TMP_PATTERN.search(path))


def _write_error(path, error):
    return cli.InputError("%s: could not be written (%s); check the folder exists, is writable "
                          "and has free space" % (path, getattr(error, "message", None) or error))


def commit(tmp_path, path):
    """Renames a finished temporary file onto its final name (replacing what is there)."""
    try:
        tf.io.gfile.rename(tmp_path, path, overwrite=True)
    except (tf.errors.OpError, OSError) as e:
        raise _write_error(path, e)


def discard(tmp_path):
    """Removes a temporary file if it is there; never raises."""
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
    tmp_path = temporary_name(path)
    try:
        with tf.io.gfile.GFile(tmp_path, mode) as writer:
            yield writer
    except (tf.errors.OpError, OSError) as e:
        discard(tmp_path)
        raise _write_error(path, e)
    except BaseException:
        discard(tmp_path)
        raise
    commit(tmp_path, path)


def write_text_atomic(path, text):
    """Writes `text` (str) to `path` atomically."""
    with atomic_write(path, "w") as writer:
        writer.write(text)


def remove_stale_temporaries(folder, prefix=""):
    """Removes temporary files that runs which died left in `folder` (names starting `prefix`).

    A temporary of a process that is still running on this host is left alone. Returns the
    removed paths.
    """
    if not tf.io.gfile.isdir(folder):
        return []
    host = socket.gethostname().split(".")[0]
    removed = []
    for name in tf.io.gfile.listdir(folder):
        name = name.rstrip("/")
        if not (name.startswith(prefix) and is_temporary_name(name)):
            continue
        owner, pid = name.rsplit(TMP_MARK, 1)[1].rsplit(".", 1)
        if owner == host and _process_alive(int(pid)):
            continue
        path = os.path.join(folder, name)
        discard(path)
        removed.append(path)
    return removed


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
