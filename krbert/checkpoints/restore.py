"""Restoring variables from a checkpoint into a new graph: shapes checked first, then warm start.

A warm start (``--init_checkpoint``) loads every trainable variable the checkpoint holds; the
encoder must match the config exactly (``check_encoder_matches``, ``check_shapes_match``),
while a part the checkpoint lacks (a converted BertModel has no pretraining heads, some no
pooler) starts from its initializer and is named in the log. Global step and optimizer
slots are never loaded: a warm-started run begins at step 0 with a fresh optimizer. A run
whose --output_dir holds a checkpoint resumes it instead (``start_checkpoint``).

A checkpoint is named by its prefix or its folder (``resolve_checkpoint``); the files it is
made of (``checkpoint_files``) are inputs no output may be written over.
"""

import collections
import os
import re

import modeling
from krbert import cli
from krbert.checkpoints.huggingface import is_model_variable
from krbert.tf_compat import tf

ENCODER = "bert/"
OPTIONAL_PARTS = (  # (name prefix, what it is): started afresh when the checkpoint lacks them
    ("bert/pooler/", "pooler"),
    ("cls/predictions/", "masked-LM head"),
    ("cls/seq_relationship/", "next-sentence head"),
    ("output_", "classifier"),
    ("cls/squad/", "span head"),
)


def checkpoint_shapes(init_checkpoint):
    """{variable name: shape list} of a checkpoint (a prefix, or a folder with a checkpoint).

    Raises InputError naming --init_checkpoint when it is missing, not a TensorFlow
    checkpoint, or holds no variable.
    """
    hint = "give a checkpoint prefix such as models/krbert_medium/bert_model.ckpt"
    if init_checkpoint.endswith(".index") or ".data-" in init_checkpoint:
        hint = "give the prefix, without the .index or .data-* suffix"
    try:
        variables = tf.train.list_variables(init_checkpoint)
    except tf.errors.NotFoundError:
        raise cli.InputError("--init_checkpoint=%s not found; %s" % (init_checkpoint, hint))
    except (tf.errors.OpError, ValueError) as e:
        reason = cli.error_reason(e).split("\n")[0]
        raise cli.InputError("--init_checkpoint=%s is not a TensorFlow checkpoint (%s); %s"
                             % (init_checkpoint, reason, hint))
    if not variables:
        raise cli.InputError("--init_checkpoint=%s holds no variable; %s" % (init_checkpoint,
                                                                             hint))
    return dict(variables)


def check_shapes_match(tvars, init_checkpoint, shapes):
    """Raises InputError naming the first graph variable whose checkpoint shape differs."""
    for var in tvars:
        name = var.op.name
        if name in shapes and list(shapes[name]) != var.shape.as_list():
            raise cli.InputError(
                "--init_checkpoint=%s: variable %s has shape %s in the checkpoint but %s in "
                "this model; use the --bert_config_file the checkpoint was trained with"
                % (init_checkpoint, name, list(shapes[name]), var.shape.as_list()))


def _part_of(name):
    """The OPTIONAL_PARTS entry a variable name belongs to, or None (the encoder, the rest)."""
    return next((part for part in OPTIONAL_PARTS if name.startswith(part[0])), None)


def check_encoder_matches(tvars, init_checkpoint, shapes):
    """Raises InputError when the checkpoint's encoder and the model's differ in variables:
    an encoder variable (bert/..., the pooler aside) of the model that the checkpoint lacks,
    or one of the checkpoint that the model lacks (optimizer slots aside)."""
    graph = set(var.op.name for var in tvars if var.op.name.startswith(ENCODER))
    stored = set(name for name in shapes if name.startswith(ENCODER) and is_model_variable(name))
    for names, where, lacking in ((graph - stored, "this model has", "the checkpoint lacks"),
                                  (stored - graph, "the checkpoint has", "this model lacks")):
        names = sorted(name for name in names if _part_of(name) is None)
        if names:
            raise cli.InputError(
                "--init_checkpoint=%s does not match --bert_config_file: %s %s%s, which %s; "
                "use the --bert_config_file the checkpoint was trained with"
                % (init_checkpoint, where, names[0],
                   " and %d more" % (len(names) - 1) if len(names) > 1 else "", lacking))


def log_fresh_parts(tvars, loaded, init_checkpoint):
    """Logs, by part (heads, pooler), the model variables the checkpoint did not hold."""
    fresh = collections.OrderedDict()
    for var in tvars:
        if var.name not in loaded:
            part = _part_of(var.op.name)
            fresh.setdefault(part[1] if part else var.op.name, []).append(var.op.name)
    for what, names in fresh.items():
        tf.logging.warning("Not in --init_checkpoint=%s, so initialised afresh: %s (%s)",
                           init_checkpoint, what, ", ".join(names))


def start_checkpoint(output_dir, init_checkpoint):
    """The checkpoint a run warm-starts from: None when ``output_dir`` holds a checkpoint of
    its own (the run resumes it, with its step, optimizer and learning-rate schedule; the
    estimator restores it over any warm start), else ``init_checkpoint``: a new run at step
    0 with a fresh optimizer and warm-up. Logs which."""
    latest = tf.train.latest_checkpoint(output_dir) if output_dir else None
    if latest and init_checkpoint:
        tf.logging.info("--output_dir=%s holds %s: resuming that run; --init_checkpoint=%s is "
                        "not read", output_dir, latest, init_checkpoint)
        return None
    if init_checkpoint:
        tf.logging.info("A new run from --init_checkpoint=%s: step 0, a fresh optimizer and "
                        "learning-rate warm-up", init_checkpoint)
    return init_checkpoint


def is_replica_copy(var):
    """Whether ``var`` is the copy of a variable that TensorFlow 1.15's MirroredStrategy
    makes for another replica (NAME/replica_N): it is initialised from NAME, so it is
    neither checked against nor loaded from a checkpoint."""
    return re.search(r"/replica_\d+$", var.op.name) is not None


def warm_start(init_checkpoint, use_tpu):
    """Maps the trainable variables found in ``init_checkpoint`` onto the current graph.

    Returns the ``scaffold_fn`` TPUEstimatorSpec expects (None on CPU, where the
    initialisation happens at once) and logs every variable, marking the loaded ones.
    """
    tvars = tf.trainable_variables()
    # In another replica's model_fn under TensorFlow 1.15's MirroredStrategy every variable
    # is a copy: nothing to check or log there, but init_from_checkpoint is still called,
    # since it synchronises the replicas.
    own = [var for var in tvars if not is_replica_copy(var)]
    loaded = {}
    scaffold_fn = None
    if init_checkpoint:
        if own:
            shapes = checkpoint_shapes(init_checkpoint)
            check_encoder_matches(own, init_checkpoint, shapes)
            check_shapes_match(own, init_checkpoint, shapes)
        assignment_map, loaded = modeling.get_assignment_map_from_checkpoint(
            tvars, init_checkpoint)
        if use_tpu:
            def tpu_scaffold():
                tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
                return tf.train.Scaffold()

            scaffold_fn = tpu_scaffold
        else:
            tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
        if own:
            tf.logging.info("Loaded %d of %d trainable variables from %s",
                            len([v for v in own if v.name in loaded]), len(own),
                            init_checkpoint)
            log_fresh_parts(own, loaded, init_checkpoint)
    tf.logging.info("**** Trainable Variables ****")
    for var in own:
        tf.logging.info("  name = %s, shape = %s%s", var.name, var.shape,
                        ", *INIT_FROM_CKPT*" if var.name in loaded else "")
    return scaffold_fn


def require_checkpoint(output_dir, init_checkpoint, what):
    """Raises InputError unless there is a model to score: a checkpoint in ``output_dir``
    or an ``init_checkpoint``."""
    if init_checkpoint or tf.train.latest_checkpoint(output_dir):
        return
    raise cli.InputError(
        "%s without --do_train: --output_dir=%s holds no checkpoint, so there is no trained "
        "model to score; pass --init_checkpoint=..., or the --output_dir of a trained run"
        % (what, output_dir))


def resolve_checkpoint(path, flag="--init_checkpoint"):
    """The checkpoint prefix that ``path`` names: a prefix (PREFIX.index and PREFIX.data-*),
    or a folder, meaning its latest checkpoint. Raises InputError naming ``flag`` when there
    is none."""
    example = "a checkpoint prefix such as dir/model.ckpt-1000 or dir/bert_model.ckpt"
    if not path:
        raise cli.InputError("%s is required; give %s, or its folder" % (flag, example))
    if tf.io.gfile.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise cli.InputError("%s=%s is a folder without a checkpoint; give %s, or the "
                                 "folder of a finished run" % (flag, path, example))
        return latest
    if not tf.io.gfile.exists(path + ".index"):
        raise cli.InputError("%s=%s: no checkpoint there (%s.index not found); give %s, or "
                             "its folder" % (flag, path, path, example))
    return path


def checkpoint_files(path):
    """Every file a checkpoint is made of, sorted (local or gs://), for guarding the
    checkpoint against outputs.

    ``path`` is a prefix (its PREFIX.index, PREFIX.data-*-of-* and any other ``PREFIX.``
    file; not those of a longer prefix such as PREFIX0) or a folder (every file under it: its
    checkpoints and their ``checkpoint`` list, or an exported SavedModel). [] when there
    is none, or the folder cannot be listed (reading the checkpoint then says why).
    """
    if tf.io.gfile.isdir(path):
        return sorted(os.path.join(folder, name) for folder, _, names in tf.io.gfile.walk(path)
                      for name in names)
    folder, prefix = os.path.split(path)
    try:
        names = tf.io.gfile.listdir(folder or ".")
    except tf.errors.OpError:
        return []
    return sorted(os.path.join(folder, name) for name in names
                  if name.startswith(prefix + ".") and not name.endswith("/"))
