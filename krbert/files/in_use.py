"""One run per output folder: the ``in_use`` marker a run holds while it writes there.

A run claims a folder by writing the marker ``in_use.tmp-HOST.PID`` in it (a temporary
name of its process, see atomic), then looking at the other markers there: a marker not
newer than its own (by modification time) means another run holds the folder, and the run
removes its marker and stops with a one-line InputError before it writes anything. Of two
runs, the one that wrote its marker later always stops; two markers of the same time stop
both (never do two runs go on). A marker whose process is gone (killed, so it could not
remove it) is stale: the next claim removes it (``atomic.remove_stale_temporaries``), so it
never blocks. Local folders go through the standard library, gs:// ones through TensorFlow
(krbert.files.fs).
"""

import contextlib
import os

from krbert import cli
from krbert.files import atomic, fs

MARKER = "in_use"


def _markers(folder):
    """{marker path: (modification time in ns, name)} of the in-use markers in ``folder``."""
    found = {}
    for name in fs.listdir(folder):
        if name.startswith(MARKER + atomic.TMP_MARK) and atomic.is_temporary_name(name):
            path = os.path.join(folder, name)
            try:
                found[path] = (fs.mtime_ns(path), name)
            except fs.errors(folder):  # released meanwhile
                continue
    return found


def _owner(marker):
    """'process PID on HOST' of a marker path."""
    host, pid = os.path.basename(marker).rsplit(atomic.TMP_MARK, 1)[1].rsplit(".", 1)
    return "process %s on %s" % (pid, host)


def claim(folder, flag):
    """Marks ``folder`` (an existing folder) in use by this process; returns the marker.

    Raises InputError naming ``flag`` when another live run holds the folder; this run's
    marker is then removed again. Stale markers of dead runs are removed first.
    """
    atomic.remove_stale_temporaries(folder, MARKER)
    marker = atomic.temporary_name(os.path.join(folder, MARKER))
    try:
        with fs.open_file(marker, "w") as writer:  # empty: its name says whose it is
            writer.write("")  # a full disk fails here, before anything else is written
        markers = _markers(folder)
    except fs.errors(folder) as e:
        atomic.discard(marker)
        raise cli.InputError("%s=%s: cannot write in this folder (%s); choose a writable "
                             "folder" % (flag, folder, cli.error_reason(e)))
    mine = markers.get(marker, (float("inf"), ""))[0]
    older = sorted(key for path, key in markers.items() if path != marker and key[0] <= mine)
    if older:
        atomic.discard(marker)
        holder = os.path.join(folder, older[0][1])
        raise cli.InputError(
            "%s=%s is in use by another run (%s, marker %s); wait for it to finish or choose "
            "another %s" % (flag, folder, _owner(holder), os.path.basename(holder), flag))
    return marker


def release(marker):
    """Removes this run's marker (never raises)."""
    atomic.discard(marker)


@contextlib.contextmanager
def claimed(folders, flag):
    """Holds every folder of ``folders`` (existing folders) while the block runs."""
    markers = []
    try:
        for folder in sorted(set(folders)):
            markers.append(claim(folder, flag))
        yield markers
    finally:
        for marker in markers:
            release(marker)
