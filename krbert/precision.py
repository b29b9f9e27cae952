"""The compute precision of prediction: float32, or bfloat16 with float32 variables and
outputs (modeling.BertModel's ``compute_dtype``).

- ``--use_bfloat16`` (define_bfloat16_flag) in predict.py, run_classifier.py and
  extract_features.py runs the encoder in bfloat16; every output (probabilities, layer
  vectors) stays float32. On a CPU with AVX512-BF16 or AMX under TensorFlow 2 the matrix
  products run natively; under TensorFlow 1.15 on the CPU they are emulated (slower).
- A SavedModel keeps the precision it was exported with (run_classifier.py --do_export
  --use_bfloat16); its classifier.json names it under ``COMPUTE_DTYPE_KEY``.
- predict.py from a checkpoint, and a bfloat16 SavedModel, read each dense layer's kernel
  as a bfloat16 copy made once after the restore (bfloat16_kernel_copies; the SavedModel's
  loader makes them), not cast from float32 at every batch; the results are the same bits.
- Training keeps float16 (--use_fp16) to itself: evaluation and prediction of a float16
  run compute in float32 (mode_dtype).
"""

from krbert.tf_compat import IS_TF2, tf

COMPUTE_DTYPE_KEY = "compute_dtype"
"""classifier.json's key for the SavedModel's compute dtype ("float32" or "bfloat16");
exports that lack it compute in float32."""


def define_bfloat16_flag(flags, what):
    """Defines --use_bfloat16 on ``flags``; ``what`` says what it computes in bfloat16."""
    flags.DEFINE_bool(
        "use_bfloat16", False,
        "Compute %s in bfloat16 (variables and outputs stay float32). Faster on CPUs with "
        "AVX512-BF16/AMX under TensorFlow 2 and on TPUs; labels match float32's on all but "
        "a few borderline examples." % what)


def inference_dtype(use_bfloat16, use_tpu=False):
    """tf.bfloat16 or tf.float32 for --use_bfloat16; warns where bfloat16 is emulated."""
    if not use_bfloat16:
        return tf.float32
    if not use_tpu and not IS_TF2:
        tf.logging.warning("--use_bfloat16 on the CPU under TensorFlow 1.15 is emulated and "
                           "slower than float32; it runs natively under TensorFlow 2")
    return tf.bfloat16


def mode_dtype(compute_dtype, is_training):
    """The encoder's dtype in a mode: float16 only while training (evaluation and prediction
    of a float16 run are float32), bfloat16 and float32 in every mode."""
    if compute_dtype == tf.float16 and not is_training:
        return tf.float32
    return compute_dtype


def dtype_name(compute_dtype):
    """"float32" or "bfloat16", as classifier.json stores it."""
    return tf.as_dtype(compute_dtype).name


def saved_dtype(metadata):
    """The compute dtype a SavedModel's classifier.json names (float32 when absent)."""
    return tf.as_dtype(metadata.get(COMPUTE_DTYPE_KEY, "float32"))


def bfloat16_kernel_copies(getter, name, *args, **kwargs):
    """A variable_scope custom getter for a bfloat16 inference graph: a float32
    ``.../kernel`` (a dense layer's matrix, read in bfloat16) comes back as a bfloat16
    local variable that holds its cast, so the cast runs once, when the local variables are
    initialized after the restore, instead of at every batch. The float32 variable stays
    (saved and restored as before); every other variable passes through."""
    variable = getter(name, *args, **kwargs)
    if not name.endswith("/kernel") or variable.dtype.base_dtype != tf.float32:
        return variable
    with tf.name_scope(name + "_bfloat16_copy/"):
        return tf.Variable(tf.cast(variable.value(), tf.bfloat16), trainable=False,
                           collections=[tf.GraphKeys.LOCAL_VARIABLES], name="copy")
