"""In-process: the GELU gradient in float16 at large inputs, and initial weights that depend
only on the seed and the variable's name (one device, other ops before, two replicas)."""

import numpy as np
import pytest

import modeling
from krbert.tf_compat import tf


def gelu_and_gradient(values, dtype):
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.constant(values, dtype)
        y = modeling.gelu(x)
        (grad,) = tf.gradients(y, x)
        return [np.asarray(v, np.float64) for v in sess.run([y, grad])]


def reference_gelu_and_gradient(x):
    """The tanh GELU and its derivative in float64."""
    inner = np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)
    t = np.tanh(inner)
    derivative = 0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * np.sqrt(2.0 / np.pi) * (
        1 + 3 * 0.044715 * x ** 2)
    return 0.5 * x * (1 + t), derivative


@pytest.mark.parametrize("dtype", [tf.float16, tf.float32])
def test_gelu_gradient_is_finite_and_right_up_to_1e4(dtype):
    x = np.array([-1e4, -3000, -65, -41, -20, -10.5, -10, -3, -1, -0.1, 0, 0.1, 1, 3, 10,
                  10.5, 20, 41, 65, 3000, 1e4])
    exact_x = x.astype(dtype.as_numpy_dtype).astype(np.float64)  # as the dtype holds them
    y, grad = gelu_and_gradient(x, dtype)
    want_y, want_grad = reference_gelu_and_gradient(exact_x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
    tolerance = 2e-3 if dtype == tf.float16 else 1e-5  # float16 holds 11 bits
    np.testing.assert_allclose(grad, want_grad, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(y, want_y, rtol=tolerance, atol=tolerance)


def test_gelu_float32_output_is_unchanged_by_the_clip():
    """Beyond the clip tanh is 1 exactly, so the output equals the unclipped formula's."""
    x = np.linspace(-60, 60, 1201).astype(np.float32)
    y, _ = gelu_and_gradient(x, tf.float32)
    inner = np.float32(np.sqrt(2.0 / np.pi)) * (x + np.float32(0.044715) * x ** 3)
    np.testing.assert_allclose(y, 0.5 * x * (1 + np.tanh(inner)), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16, tf.float32])
def test_inference_gelu_gives_gelus_values_and_stays_finite(dtype):
    x = np.concatenate([np.linspace(-60, 60, 1201), [-1e4, -3000, -65, 65, 3000, 1e4]])
    with tf.Graph().as_default(), tf.Session() as session:
        inputs = tf.constant(x.astype(np.float32))
        cast = tf.cast(inputs, dtype)
        fused, hand = session.run([tf.cast(modeling.gelu_inference(cast), tf.float32),
                                   tf.cast(modeling.gelu(cast), tf.float32)])
    assert np.all(np.isfinite(fused))
    tolerance = {tf.float32: 1e-6, tf.bfloat16: 2e-2, tf.float16: 2e-3}[dtype]
    np.testing.assert_allclose(fused, hand, rtol=tolerance, atol=tolerance)


def test_the_inference_gelu_serves_graphs_without_training_only(monkeypatch):
    assert modeling.inference_activation(modeling.gelu, False) is modeling.gelu_inference
    assert modeling.inference_activation(modeling.gelu, True) is modeling.gelu
    assert modeling.inference_activation(tf.nn.relu, False) is tf.nn.relu
    config = modeling.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=16)
    ids = np.random.RandomState(3).randint(0, 30, size=(2, 5)).astype(np.int32)
    outputs = {}
    for activation in (modeling.gelu_inference, modeling.gelu):
        with tf.Graph().as_default(), tf.Session() as session:
            tf.set_random_seed(5)  # the weights hang on the seed and their names only
            monkeypatch.setattr(modeling, "inference_activation",
                                lambda act, training, chosen=activation: chosen)
            model = modeling.BertModel(config, False, tf.constant(ids))
            session.run(tf.global_variables_initializer())
            outputs[activation] = session.run(model.get_sequence_output())
    np.testing.assert_allclose(outputs[modeling.gelu_inference], outputs[modeling.gelu],
                               rtol=1e-5, atol=1e-6)


def initial_weights(seed, ops_before=0, replicas=0):
    """{name: value} of a BertModel's embedding and first kernels, built after
    ``ops_before`` random ops, on one device or under a strategy of ``replicas``."""
    config = modeling.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=16)
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        for _ in range(ops_before):
            tf.random.normal([3])

        def build():
            modeling.BertModel(config, False, tf.zeros([2, 4], tf.int32))

        if replicas:
            strategy = tf.distribute.MirroredStrategy(["/cpu:%d" % i for i in range(replicas)])
            with strategy.scope():
                strategy.extended.call_for_each_replica(build)
        else:
            build()
        names = [v for v in tf.global_variables() if v.op.name.endswith(
            ("embeddings", "kernel"))]
        session = tf.Session(config=tf.ConfigProto(device_count={"CPU": max(replicas, 1)}))
        with session as sess:
            sess.run(tf.global_variables_initializer())
            return {v.op.name: sess.run(v) for v in names}


def test_initial_weights_depend_only_on_the_seed_and_the_name():
    plain = initial_weights(7)
    assert len(plain) >= 8
    for other in (initial_weights(7, ops_before=5), initial_weights(7, replicas=2)):
        assert sorted(other) == sorted(plain)
        for name, value in plain.items():
            np.testing.assert_array_equal(other[name], value, err_msg=name)
    # Another seed, other weights; two variables of one shape differ.
    assert not np.array_equal(initial_weights(8)["bert/embeddings/word_embeddings"],
                              plain["bert/embeddings/word_embeddings"])
    query, key = (plain["bert/encoder/layer_0/attention/self/%s/kernel" % n]
                  for n in ("query", "key"))
    assert not np.array_equal(query, key)
    assert abs(float(np.std(query)) - 0.02) < 0.006
