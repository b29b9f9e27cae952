"""Tests of optimization.py: schedule, weight decay selection, update rule and clipping."""

import numpy as np
import pytest

import optimization
from krbert.tf_compat import tf

BETA_1, BETA_2, EPSILON, DECAY = 0.9, 0.999, 1e-6, 0.01


def learning_rates(init_lr, num_train_steps, num_warmup_steps, steps):
    with tf.Graph().as_default(), tf.Session() as sess:
        step = tf.placeholder(tf.int64, [])
        rate = optimization.learning_rate_schedule(init_lr, num_train_steps, num_warmup_steps,
                                                   step)
        return [sess.run(rate, {step: s}) for s in steps]


def test_learning_rate_warmup_then_linear_decay():
    # init_lr 0.1, 100 steps, 10 warmup steps:
    #   step 0: 0.1 * 0/10 = 0; step 5: 0.1 * 5/10 = 0.05; step 9: 0.09;
    #   step 10 (end of warmup): 0.1 * (1 - 10/100) = 0.09; step 50: 0.05;
    #   step 75: 0.025; step 100 and beyond: 0.
    steps = [0, 5, 9, 10, 50, 75, 100, 150]
    expected = [0.0, 0.05, 0.09, 0.09, 0.05, 0.025, 0.0, 0.0]
    np.testing.assert_allclose(learning_rates(0.1, 100, 10, steps), expected, atol=1e-7)


def test_learning_rate_without_warmup_starts_at_init_lr():
    np.testing.assert_allclose(learning_rates(2e-5, 1000, 0, [0, 500, 1000]),
                               [2e-5, 1e-5, 0.0], rtol=1e-6, atol=1e-12)


def test_learning_rate_defaults_to_the_global_step():
    with tf.Graph().as_default(), tf.Session() as sess:
        global_step = tf.train.get_or_create_global_step()
        rate = optimization.learning_rate_schedule(1.0, 10, 4)
        sess.run(tf.global_variables_initializer())
        sess.run(global_step.assign(2))
        assert sess.run(rate) == pytest.approx(0.5)


def test_weight_decay_selection_by_name():
    optimizer = optimization.AdamWeightDecayOptimizer(
        0.1, weight_decay_rate=DECAY,
        exclude_from_weight_decay=optimization.EXCLUDE_FROM_WEIGHT_DECAY)
    decayed = [
        "bert/embeddings/word_embeddings",
        "bert/embeddings/position_embeddings",
        "bert/encoder/layer_0/attention/self/query/kernel",
        "bert/encoder/layer_3/intermediate/dense/kernel",
        "bert/pooler/dense/kernel",
        "cls/seq_relationship/output_weights",
    ]
    not_decayed = [
        "bert/embeddings/LayerNorm/gamma",
        "bert/encoder/layer_0/attention/output/LayerNorm/beta",
        "bert/encoder/layer_0/attention/self/query/bias",
        "bert/pooler/dense/bias",
        "cls/predictions/output_bias",
        "cls/predictions/transform/LayerNorm/gamma",
        "head/layer_norm/gamma",
    ]
    for name in decayed:
        assert optimizer._do_use_weight_decay(name), name  # pylint: disable=protected-access
    for name in not_decayed:
        assert not optimizer._do_use_weight_decay(name), name  # pylint: disable=protected-access


def test_only_selected_variables_decay_under_create_optimizer():
    names = ["dense/kernel", "dense/bias", "LayerNorm/gamma", "head/layer_norm/beta",
             "word_embeddings"]
    with tf.Graph().as_default(), tf.Session() as sess:
        variables = [tf.get_variable(n, [3], initializer=tf.constant_initializer(2.0))
                     for n in names]
        # A zero gradient leaves only the decay term: w <- w - lr * 0.01 * w.
        loss = 0.0 * tf.add_n([tf.reduce_sum(v) for v in variables])
        train_op = optimization.create_optimizer(loss, 0.5, 10, 0, use_tpu=False)
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        values = dict(zip(names, sess.run(variables)))
    decayed = 2.0 - 0.5 * DECAY * 2.0
    np.testing.assert_allclose(values["dense/kernel"], [decayed] * 3, rtol=1e-6)
    np.testing.assert_allclose(values["word_embeddings"], [decayed] * 3, rtol=1e-6)
    for name in ["dense/bias", "LayerNorm/gamma", "head/layer_norm/beta"]:
        np.testing.assert_array_equal(values[name], [2.0] * 3)


def numpy_adam_step(w, m, v, grad, lr, decay):
    """Adam without bias correction, then decoupled weight decay."""
    m = BETA_1 * m + (1 - BETA_1) * grad
    v = BETA_2 * v + (1 - BETA_2) * grad ** 2
    update = m / (np.sqrt(v) + EPSILON) + decay * w
    return w - lr * update, m, v


def quadratic_problem(use_resource):
    """loss = sum(c * w) + 0.5 * sum(w^2) + sum(c * b): gradients c + w and c."""
    w0 = np.array([0.3, -0.2, 0.1], np.float32)
    b0 = np.array([0.05, 0.0], np.float32)
    coefficients_w = np.array([0.2, -0.1, 0.05], np.float32)
    coefficients_b = np.array([0.1, -0.3], np.float32)
    w = tf.get_variable("layer/kernel", initializer=w0, use_resource=use_resource)
    b = tf.get_variable("layer/bias", initializer=b0, use_resource=use_resource)
    loss = (tf.reduce_sum(coefficients_w * w) + 0.5 * tf.reduce_sum(tf.square(w))
            + tf.reduce_sum(coefficients_b * b))
    gradients = (lambda w_value: coefficients_w + w_value, lambda b_value: coefficients_b)
    return (w, b), (w0, b0), gradients, loss


@pytest.mark.parametrize("use_resource", [False, True])
def test_two_steps_match_numpy(use_resource):
    init_lr, num_train_steps = 0.1, 4
    with tf.Graph().as_default(), tf.Session() as sess:
        (w, b), (w_np, b_np), (grad_w, grad_b), loss = quadratic_problem(use_resource)
        train_op = optimization.create_optimizer(loss, init_lr, num_train_steps, 0, False)
        sess.run(tf.global_variables_initializer())
        m_w = v_w = np.zeros(3)
        m_b = v_b = np.zeros(2)
        for step in range(2):
            # The gradient norm stays below 1.0, so nothing is clipped.
            gw, gb = grad_w(w_np), grad_b(b_np)
            assert np.sqrt((gw ** 2).sum() + (gb ** 2).sum()) < 1.0
            lr = init_lr * (1.0 - step / float(num_train_steps))
            w_np, m_w, v_w = numpy_adam_step(w_np, m_w, v_w, gw, lr, DECAY)
            b_np, m_b, v_b = numpy_adam_step(b_np, m_b, v_b, gb, lr, 0.0)
            sess.run(train_op)
            # Steps are ~0.3; float32 rounding of 1 - beta_2 moves them by ~2e-6, while
            # a misplaced decay (lr * 0.01 * w) or bias correction is >= 3e-4 off.
            np.testing.assert_allclose(sess.run(w), w_np, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(sess.run(b), b_np, rtol=1e-5, atol=1e-5)
        slots = {v.op.name: sess.run(v) for v in tf.global_variables()}
    assert sorted(slots) == ["global_step", "layer/bias", "layer/bias/adam_m",
                             "layer/bias/adam_v", "layer/kernel", "layer/kernel/adam_m",
                             "layer/kernel/adam_v"]
    assert slots["global_step"] == 2
    np.testing.assert_allclose(slots["layer/kernel/adam_m"], m_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(slots["layer/kernel/adam_v"], v_w, rtol=1e-4)
    np.testing.assert_allclose(slots["layer/bias/adam_v"], v_b, rtol=1e-4)


def test_gradients_are_clipped_to_global_norm_one():
    # Gradients (30, 40) and (0, 0, 120): global norm 130, clipped to norm 1.0.
    with tf.Graph().as_default(), tf.Session() as sess:
        a = tf.get_variable("a/bias", initializer=np.zeros(2, np.float32))
        c = tf.get_variable("c/bias", initializer=np.zeros(3, np.float32))
        loss = tf.reduce_sum(tf.constant([30.0, 40.0]) * a) + 120.0 * c[2]
        train_op = optimization.create_optimizer(loss, 1e-3, 10, 0, False)
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        m_a, m_c = sess.run(["a/bias/adam_m:0", "c/bias/adam_m:0"])
    # After one step m = (1 - beta_1) * clipped gradient.
    np.testing.assert_allclose(m_a / (1 - BETA_1), [30 / 130.0, 40 / 130.0], rtol=1e-5)
    np.testing.assert_allclose(m_c / (1 - BETA_1), [0.0, 0.0, 120 / 130.0], rtol=1e-5)


def test_small_gradients_are_not_clipped():
    with tf.Graph().as_default(), tf.Session() as sess:
        a = tf.get_variable("a/bias", initializer=np.zeros(2, np.float32))
        loss = tf.reduce_sum(tf.constant([0.3, 0.4]) * a)
        train_op = optimization.create_optimizer(loss, 1e-3, 10, 0, False)
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        np.testing.assert_allclose(sess.run("a/bias/adam_m:0"), [0.03, 0.04], rtol=1e-5)


def test_global_step_advances_once_per_run_and_drives_the_schedule():
    with tf.Graph().as_default(), tf.Session() as sess:
        w = tf.get_variable("w/bias", initializer=np.zeros(1, np.float32))
        loss = tf.reduce_sum(w)
        train_op = optimization.create_optimizer(loss, 1.0, 100, 10, False)
        global_step = tf.train.get_global_step()
        sess.run(tf.global_variables_initializer())
        positions = []
        for _ in range(3):
            sess.run(train_op)
            positions.append(sess.run(w)[0])
        assert sess.run(global_step) == 3
    # Warmup rates 0, 0.1, 0.2; the gradient is 1.0 at every step (norm 1.0: no clip).
    m1, v1 = 0.1, 0.001
    m2, v2 = 0.9 * m1 + 0.1, 0.999 * v1 + 0.001
    m3, v3 = 0.9 * m2 + 0.1, 0.999 * v2 + 0.001
    w2 = -0.1 * m2 / (np.sqrt(v2) + EPSILON)
    w3 = w2 - 0.2 * m3 / (np.sqrt(v3) + EPSILON)
    np.testing.assert_allclose(positions, [0.0, w2, w3], rtol=1e-5, atol=1e-7)


def test_indexed_slices_gradient_from_an_embedding_lookup():
    with tf.Graph().as_default(), tf.Session() as sess:
        table = tf.get_variable("table/bias", initializer=np.ones([4, 2], np.float32))
        loss = tf.reduce_sum(tf.gather(table, [1, 1, 3])) * 0.1
        train_op = optimization.create_optimizer(loss, 0.01, 10, 0, False)
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        m = sess.run("table/bias/adam_m:0")
    np.testing.assert_allclose(m[:, 0], [0.0, 0.02, 0.0, 0.01], rtol=1e-5, atol=1e-8)


def test_use_tpu_wraps_the_optimizer_in_cross_shard_optimizer():
    with tf.Graph().as_default():
        w = tf.get_variable("w", [2])
        train_op = optimization.create_optimizer(tf.reduce_sum(w * w), 1e-3, 10, 1, True)
        op_types = {op.type for op in tf.get_default_graph().get_operations()}
    assert train_op is not None
    assert "CrossReplicaSum" in op_types
