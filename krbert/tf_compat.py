"""The one place this codebase imports TensorFlow.

Every module does ``from tf_compat import tf`` and gets the TF1-style API:
``tensorflow`` itself on TensorFlow 1.15, ``tensorflow.compat.v1`` with v2 behaviour
disabled on TensorFlow 2.x. Nothing here uses ``tf.contrib``; the TPU estimator and the
cluster resolver come from APIs present in both versions.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as _tensorflow  # noqa: E402  (the only such import in the project)

TF_VERSION = _tensorflow.__version__
IS_TF2 = TF_VERSION.startswith("2.")

if IS_TF2:
    tf = _tensorflow.compat.v1
    _level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # disable_v2_behavior logs deprecation notes
    tf.disable_v2_behavior()
    tf.get_logger().setLevel(_level)
else:
    tf = _tensorflow

# The TF 1.x names used on purpose here would each log a deprecation notice.
try:
    from tensorflow.python.util import deprecation as _deprecation
    from tensorflow.python.util import module_wrapper as _module_wrapper

    _deprecation._PRINT_DEPRECATION_WARNINGS = False
    _module_wrapper._PER_MODULE_WARNING_LIMIT = 0
except ImportError:  # pragma: no cover - the modules moved
    pass

# TensorFlow's logger would also hand every record to absl's root handler: log once.
tf.get_logger().propagate = False

tpu_estimator = tf.estimator.tpu
"""TPUEstimator, TPUEstimatorSpec, RunConfig, TPUConfig, InputPipelineConfig."""

TPUClusterResolver = tf.distribute.cluster_resolver.TPUClusterResolver


def release_coordinator_server():
    """Drops the reference tf.distribute's coordinator keeps to this task's gRPC server
    (multi-worker training), so the server object is finalised now; at interpreter exit
    its finaliser would print a traceback (TensorFlow 1.15). The server cannot be
    stopped, and is not: only the Python object goes."""
    try:
        from tensorflow.python.distribute import distribute_coordinator
        local = distribute_coordinator._thread_local  # pylint: disable=protected-access
    except (ImportError, AttributeError):  # pragma: no cover - the module moved
        return
    if getattr(local, "server", None) is not None:
        local.server = None
        import gc
        gc.collect()
