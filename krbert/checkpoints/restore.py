"""Restoring variables from a checkpoint into a new graph: shapes checked first, then warm start."""

import modeling
from krbert import cli
from krbert.tf_compat import tf


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


def warm_start(init_checkpoint, use_tpu):
    """Maps the trainable variables found in ``init_checkpoint`` onto the current graph.

    Returns the ``scaffold_fn`` TPUEstimatorSpec expects (None on CPU, where the
    initialisation happens at once) and logs every variable, marking the loaded ones.
    """
    tvars = tf.trainable_variables()
    loaded = {}
    scaffold_fn = None
    if init_checkpoint:
        check_shapes_match(tvars, init_checkpoint, checkpoint_shapes(init_checkpoint))
        assignment_map, loaded = modeling.get_assignment_map_from_checkpoint(
            tvars, init_checkpoint)
        if use_tpu:
            def tpu_scaffold():
                tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
                return tf.train.Scaffold()

            scaffold_fn = tpu_scaffold
        else:
            tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
        tf.logging.info("Loaded %d of %d trainable variables from %s",
                        len([v for v in tvars if v.name in loaded]), len(tvars),
                        init_checkpoint)
    tf.logging.info("**** Trainable Variables ****")
    for var in tvars:
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
