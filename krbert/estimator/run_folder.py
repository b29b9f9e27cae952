"""The output folder of a training run: created, held by one run, cleared of what dead runs
left, and tied to the settings its model was trained with."""

import atexit
import json
import os
import re

from krbert import cli
from krbert.files import atomic, fs, in_use
from krbert.tf_compat import tf

IN_USE = in_use.MARKER  # the marker of a run using an output folder: in_use.tmp-HOST.PID
TRAINING_SETTINGS = "training_settings.json"


# The folder a sharded checkpoint write fills before renaming: TF 1.15 adds a random hex.
_CHECKPOINT_TEMPORARY = re.compile(r"\.ckpt-\d+_temp(_[0-9a-f]+)?/?$")


def ensure_output_dir(path, chief=True):
    """Creates ``path`` (gs:// too), claims it for this run and clears what dead runs left.

    Raises InputError saying it cannot be written, or that another live run holds it
    (see in_use). While this process runs, the folder holds its marker
    ``in_use.tmp-HOST.PID``. Temporary files of dead runs (see atomic) go; so do the
    ``model.ckpt-N_temp*`` folders a checkpoint write killed midway leaves.

    Args:
      chief: False for the other workers of a multi-worker job: they share the chief's
        folder, so they only create it (the chief claims and clears it).
    """
    try:
        tf.io.gfile.makedirs(path)
    except (tf.errors.OpError, OSError) as e:
        raise cli.InputError("--output_dir=%s cannot be created (%s); choose a writable "
                             "folder" % (path, cli.error_reason(e)))
    if not fs.is_remote(path) and not os.access(path, os.W_OK):
        raise cli.InputError("--output_dir=%s is not writable; choose a writable folder" % path)
    if not chief:
        return
    marker = in_use.claim(path, "--output_dir")
    atexit.register(in_use.release, marker)
    for removed in atomic.remove_stale_temporaries(path):
        tf.logging.info("Removed %s, left by a run that died", removed)
    remove_checkpoint_temporaries(path)


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


# ---------------------------------------------------------------------------------------
# Resuming: a rerun into --output_dir continues the run only when it has the same settings


def first_difference(old, new, prefix=""):
    """'key was X, now Y' for the first key (nested keys joined by dots) that differs."""
    for key in sorted(set(old) | set(new)):
        before, now = old.get(key), new.get(key)
        if before != now:
            if isinstance(before, dict) and isinstance(now, dict):
                return first_difference(before, now, prefix + key + ".")
            return "%s%s was %s, now %s" % (prefix, key, json.dumps(before), json.dumps(now))
    return None


def recorded_settings(output_dir):
    """The settings recorded in ``output_dir`` (a dict), or None when there are none."""
    path = os.path.join(output_dir, TRAINING_SETTINGS)
    try:
        with tf.io.gfile.GFile(path, "r") as reader:
            settings = json.loads(reader.read())
    except (tf.errors.OpError, OSError, ValueError):
        return None
    return settings if isinstance(settings, dict) else None


RESUME_HINT = "give a new --output_dir (rerun with the same flags to resume that run)"


def _refuse(output_dir, difference, hint=RESUME_HINT):
    raise cli.InputError("--output_dir=%s holds a model trained with other settings (%s); %s"
                         % (output_dir, difference, hint))


def check_same_run(output_dir, settings, unrecorded="refuse"):
    """Records ``settings`` (plain JSON values) in ``output_dir``; when it already holds a
    checkpoint, raises InputError unless that model was trained with the same settings
    (the run resumes).

    Args:
      unrecorded: what a checkpoint without recorded settings (a folder of an older
        version) means: "refuse", or "record" (a WARNING, then the settings are recorded
        and the run resumes).
    """
    path = os.path.join(output_dir, TRAINING_SETTINGS)
    if tf.train.latest_checkpoint(output_dir):
        old = recorded_settings(output_dir)
        if old is None and unrecorded == "record" and not tf.io.gfile.exists(path):
            tf.logging.warning("%s holds a checkpoint but no %s (an older version's run); "
                               "resuming it and recording this run's settings", output_dir,
                               TRAINING_SETTINGS)
        elif old is None:
            _refuse(output_dir, "its training settings are not recorded")
        else:
            difference = first_difference(old, settings)
            if difference:
                _refuse(output_dir, difference)
            tf.logging.info("Resuming the training run in %s (same settings)", output_dir)
            return
    atomic.write_text_atomic(path, json.dumps(settings, indent=1, sort_keys=True) + "\n")


def check_same_model(output_dir, settings):
    """Without training: InputError when the checkpoint of ``output_dir`` was trained with
    other values of ``settings`` (e.g. the BERT config) than given now, as far as recorded."""
    old = recorded_settings(output_dir)
    if old is None or not tf.train.latest_checkpoint(output_dir):
        return
    difference = first_difference({key: old.get(key) for key in settings}, settings)
    if difference:
        _refuse(output_dir, difference, "pass the flags it was trained with")
