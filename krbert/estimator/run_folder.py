"""The output folder of a training run: created, marked in use, cleared of what dead runs left."""

import atexit
import os
import re

from krbert import cli
from krbert.files import atomic
from krbert.tf_compat import tf

IN_USE = "in_use"  # the marker of a run using an output folder: in_use.tmp-HOST.PID


# The folder a sharded checkpoint write fills before renaming: TF 1.15 adds a random hex.
_CHECKPOINT_TEMPORARY = re.compile(r"\.ckpt-\d+_temp(_[0-9a-f]+)?/?$")


def ensure_output_dir(path):
    """Creates ``path`` (gs:// too), marks it in use and clears what dead runs left there.

    Raises InputError saying it cannot be written. While this process runs, the folder
    holds the marker ``in_use.tmp-HOST.PID``. Temporary files of dead runs (see
    file_utils) go; so do the ``model.ckpt-N_temp*`` folders a checkpoint write killed
    midway leaves, unless another live run on this host marks the folder in use.
    """
    try:
        tf.io.gfile.makedirs(path)
    except (tf.errors.OpError, OSError) as e:
        raise cli.InputError("--output_dir=%s cannot be created (%s); choose a writable "
                             "folder" % (path, cli.error_reason(e)))
    if not path.startswith("gs://") and not os.access(path, os.W_OK):
        raise cli.InputError("--output_dir=%s is not writable; choose a writable folder" % path)
    for removed in atomic.remove_stale_temporaries(path):
        tf.logging.info("Removed %s, left by a run that died", removed)
    marker = atomic.temporary_name(os.path.join(path, IN_USE))
    others = [name for name in tf.io.gfile.listdir(path) if name != os.path.basename(marker)
              and name.startswith(IN_USE + atomic.TMP_MARK)]
    if others:
        tf.logging.warning("%s is in use by another run too (%s)", path, ", ".join(others))
    else:
        remove_checkpoint_temporaries(path)
    with tf.io.gfile.GFile(marker, "w") as writer:
        writer.write("%d\n" % os.getpid())
    atexit.register(atomic.discard, marker)


def remove_checkpoint_temporaries(path):
    """Removes the ``*.ckpt-N_temp*`` folders in ``path`` (a sharded checkpoint write
    that was killed); returns their paths."""
    removed = []
    for name in tf.io.gfile.listdir(path):
        folder = os.path.join(path, name.rstrip("/"))
        if _CHECKPOINT_TEMPORARY.search(name) and tf.io.gfile.isdir(folder):
            tf.io.gfile.rmtree(folder)
            tf.logging.info("Removed %s, a checkpoint write that did not finish", folder)
            removed.append(folder)
    return removed
