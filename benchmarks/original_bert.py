"""Runs the original BERT release's run_pretraining.py (a read-only checkout, e.g.
/work/ref/bert) under TensorFlow 2.15 for the benchmark: it is written for TensorFlow 1.x
with tf.contrib, so its ``import tensorflow as tf`` is given tf.compat.v1 with the few
contrib names it uses mapped onto their TensorFlow 2.15 homes. Its code is imported as is
(nothing copied or edited); only the training call gets a timing hook.

    python benchmarks/original_bert.py BERT_DIR PROBE_JSON -- run_pretraining flags...
"""

import json
import os
import sys
import time
import types


def compat_tensorflow():
    """tf.compat.v1 with ``contrib`` (tpu, cluster_resolver, data, layers.layer_norm)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from krbert.tf_compat import tf, tpu_estimator  # tf.compat.v1, v2 behaviour off

    def layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None):
        """tf.contrib.layers.layer_norm over the last axis: variables beta and gamma."""
        del begin_norm_axis, begin_params_axis
        with tf.variable_scope(scope, default_name="LayerNorm"):
            width = inputs.shape[-1]
            beta = tf.get_variable("beta", [width], initializer=tf.zeros_initializer())
            gamma = tf.get_variable("gamma", [width], initializer=tf.ones_initializer())
            mean, variance = tf.nn.moments(inputs, [-1], keep_dims=True)
            return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, 1e-12)

    tpu = types.SimpleNamespace(
        TPUEstimator=tpu_estimator.TPUEstimator, TPUEstimatorSpec=tpu_estimator.TPUEstimatorSpec,
        RunConfig=tf.estimator.tpu.RunConfig, TPUConfig=tf.estimator.tpu.TPUConfig,
        InputPipelineConfig=tf.estimator.tpu.InputPipelineConfig,
        CrossShardOptimizer=tf.tpu.CrossShardOptimizer)
    tf.contrib = types.SimpleNamespace(
        tpu=tpu, cluster_resolver=tf.distribute.cluster_resolver,
        data=types.SimpleNamespace(parallel_interleave=tf.data.experimental.parallel_interleave,
                                   map_and_batch=tf.data.experimental.map_and_batch),
        layers=types.SimpleNamespace(layer_norm=layer_norm))
    return tf


def main():
    bert_dir, probe_path = sys.argv[1], sys.argv[2]
    tf = compat_tensorflow()
    sys.modules["tensorflow"] = tf
    sys.path.insert(0, bert_dir)
    import run_pretraining  # the original's, from bert_dir

    times = []

    class Probe(tf.train.SessionRunHook):
        def after_run(self, run_context, run_values):
            times.append(time.time())

    estimator_class = tf.contrib.tpu.TPUEstimator

    def timed_estimator(*args, **kwargs):
        """The TPUEstimator, its train() given the Probe (the Estimator forbids
        subclasses that override train)."""
        estimator = estimator_class(*args, **kwargs)
        train = estimator.train

        def train_with_probe(input_fn, hooks=None, **options):
            return train(input_fn, hooks=(hooks or []) + [Probe()], **options)

        estimator.train = train_with_probe
        return estimator

    tf.contrib.tpu.TPUEstimator = timed_estimator
    try:
        tf.app.run(run_pretraining.main, argv=[sys.argv[0]] + sys.argv[4:])
    except SystemExit:
        pass
    with open(probe_path, "w") as handle:
        json.dump({"times": times}, handle)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
