"""Input files, local or gs://: globs, existence checks, and outputs that would replace an input.

Inputs are found once (`glob_input_files`, `check_input_file`) and outputs are checked
against them before the work starts (`check_outputs_spare_inputs`); a problem the user can
fix is a one-line cli.InputError naming the file.

Local paths go through the standard library; only gs:// paths import TensorFlow (for
tf.io.gfile, through krbert.files.fs), so tools without TensorFlow (build_corpus.py) check
their inputs here too. An input exists when ``fs.exists`` says so: a broken link is not
found.
"""

import fnmatch
import glob
import os

from krbert import cli
from krbert.files import fs


def _glob(pattern):
    """Sorted matches of a glob: tf.io.gfile.glob for gs://, else the standard library's
    (which, like gfile, also matches names starting with a dot)."""
    if not fs.is_remote(pattern):
        if not glob.has_magic(pattern):
            return [pattern] if os.path.exists(pattern) else []
        folder, name = os.path.split(pattern)
        if glob.has_magic(folder):
            folders = sorted(glob.glob(folder))
        else:
            folders = [folder] if os.path.isdir(folder or ".") else []
        matches = []
        for parent in folders:
            try:
                names = os.listdir(parent or ".")
            except OSError:
                continue
            matches += [os.path.join(parent, n) for n in names if fnmatch.fnmatchcase(n, name)]
        return sorted(matches)
    tf = fs.tf()
    try:
        return sorted(tf.io.gfile.glob(pattern))
    except tf.errors.NotFoundError:  # a missing folder, on TF 1.x
        return []
    except tf.errors.OpError as e:
        raise cli.InputError("cannot list '%s' (%s); check the path"
                             % (pattern, cli.error_reason(e)))


def _is_local_directory(path):
    return not fs.is_remote(path) and os.path.isdir(path)


def glob_input_files(patterns, what="--input_file"):
    """Files of comma-separated globs (gs:// too): sorted per glob, each file once.

    Local folders a glob matches are left out (gs:// matches are not stat'ed one by one).
    Raises InputError naming `what` (the flag) and the pattern when a glob matches no file,
    or names only a folder.
    """
    files = []
    for pattern in [p.strip() for p in (patterns or "").split(",") if p.strip()]:
        try:
            matches = _glob(pattern)
        except cli.InputError as e:
            raise cli.InputError("%s: %s" % (what, e))
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
        if fs.isdir(path):
            raise cli.InputError("%s: %sis a folder, not a file; pass a file" % (path, what))
        if not fs.exists(path):
            raise cli.InputError("%s: %snot found; check the path" % (path, what))
    except fs.errors(path) as e:
        raise cli.InputError("%s: %scannot be read (%s); check the path" % (path, what,
                                                                            cli.error_reason(e)))


def _identity(path):
    """What names one file: (device, inode) of an existing local file (links followed),
    else the normalized path."""
    if fs.is_remote(path):
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


def check_file_flag(flag, path, what):
    """Raises InputError unless ``path`` names a file (not missing, not a folder)."""
    if not path:
        raise cli.InputError("--%s is required; give %s" % (flag, what))
    if fs.isdir(path):
        raise cli.InputError("--%s=%s is a folder; give %s" % (flag, path, what))
    if not fs.exists(path):
        raise cli.InputError("--%s=%s not found; give %s" % (flag, path, what))
