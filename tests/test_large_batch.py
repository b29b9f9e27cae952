"""Large batches in-process: gradient accumulation (K micro-batches make the update of one
batch, on one device and on two CPU replicas) and the LAMB optimizer against a NumPy
reference written here."""

import numpy as np
import pytest

import optimization
from krbert.checkpoints import huggingface
from krbert.tf_compat import tf
from test_distribution import FEATURES, REPLICAS, TARGETS, cpu_session, mirrored

BETA_1, BETA_2, EPSILON, DECAY = 0.9, 0.999, 1e-6, 0.01
UPDATES = 4
BATCH = len(FEATURES)


# ---------------------------------------------------------------------------------------
# Gradient accumulation


def linear_loss(features, targets):
    """Mean squared error of a linear model (kernel [5, 1], bias [1]) over the update's
    BATCH examples (the share of ``features``)."""
    kernel = tf.get_variable("dense/kernel", initializer=np.linspace(
        -1, 1, 5).astype(np.float32).reshape(5, 1))
    bias = tf.get_variable("dense/bias", initializer=np.zeros(1, np.float32))
    predictions = tf.squeeze(tf.matmul(features, kernel), 1) + bias
    return optimization.mean_share(tf.square(predictions - targets), total_count=BATCH)


def train(optimizer, accumulation_steps, replicas=1):
    """Every variable after UPDATES updates on batches of BATCH examples (all the same),
    read as ``accumulation_steps`` micro-batches, split over ``replicas``."""
    micro = BATCH // accumulation_steps
    with tf.Graph().as_default():
        features = tf.placeholder(tf.float32, [micro, 5])
        targets = tf.placeholder(tf.float32, [micro])

        def replica_fn(replica):
            share = micro // replicas
            return optimization.create_optimizer(
                linear_loss(tf.gather(tf.reshape(features, [replicas, share, 5]), replica),
                            tf.gather(tf.reshape(targets, [replicas, share]), replica)),
                0.01, 10, 2, False, optimizer=optimizer,
                accumulation_steps=accumulation_steps)

        strategy = None
        if replicas == 1:
            train_op = replica_fn(tf.constant(0))
        else:
            strategy, train_op = mirrored(replica_fn)
        with cpu_session(replicas) as sess:
            sess.run(tf.global_variables_initializer())
            for run in range(UPDATES * accumulation_steps):
                part = slice((run % accumulation_steps) * micro,
                             (run % accumulation_steps + 1) * micro)
                sess.run(train_op, {features: FEATURES[part], targets: TARGETS[part]})
                step = sess.run(tf.train.get_global_step())
                assert step == (run + 1) // accumulation_steps  # updates, not runs
            values = {}
            for variable in tf.global_variables():
                copies = [sess.run(variable)] if strategy is None else [
                    sess.run(v) for v in strategy.experimental_local_results(variable)]
                for copy in copies[1:]:
                    np.testing.assert_array_equal(copy, copies[0], err_msg=variable.op.name)
                values[variable.op.name] = copies[0]
            return values


@pytest.fixture(scope="module", params=["adamw", "lamb"])
def one_batch(request):
    return request.param, train(request.param, 1)


@pytest.mark.parametrize("steps, replicas", [(2, 1), (4, 1), (2, REPLICAS)])
def test_accumulated_micro_batches_make_the_update_of_one_batch(one_batch, steps, replicas):
    optimizer, expected = one_batch
    got = train(optimizer, steps, replicas)
    extra = sorted(set(got) - set(expected))
    assert extra == ["dense/bias/grad_accum", "dense/kernel/grad_accum",
                     "grad_accum_micro_steps"]
    assert got["grad_accum_micro_steps"] == 0  # between updates
    assert not [name for name in extra if huggingface.is_model_variable(name)]
    assert expected["global_step"] == got["global_step"] == UPDATES
    for name, want in expected.items():
        scale = max(float(np.max(np.abs(want))), 1e-30)
        assert np.max(np.abs(got[name] - want)) <= 1e-5 * scale, name


def test_a_skipped_float16_update_drops_its_micro_batches():
    """A non-finite gradient in one micro-batch skips the whole update (the step does not
    advance); the next update starts from fresh sums."""
    with tf.Graph().as_default():
        poison = tf.placeholder(tf.float32, [])
        features, targets = tf.constant(FEATURES[:8]), tf.constant(TARGETS[:8])
        scale = optimization.DynamicLossScale(initial_scale=8.0, growth_interval=100)
        train_op = optimization.create_optimizer(
            poison * linear_loss(features, targets), 0.01, 10, 0, False, loss_scale=scale,
            accumulation_steps=2)
        kernel = tf.trainable_variables()[0]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            start = sess.run(kernel)
            for value in (1.0, np.inf):
                sess.run(train_op, {poison: value})
            assert sess.run(tf.train.get_global_step()) == 0
            assert sess.run(scale.scale) == 4.0
            np.testing.assert_array_equal(sess.run(kernel), start)
            for _ in range(2):
                sess.run(train_op, {poison: 1.0})
            assert sess.run(tf.train.get_global_step()) == 1
            assert np.all(np.isfinite(sess.run(tf.global_variables())[0]))
            assert sess.run(scale.scale) == 4.0


# ---------------------------------------------------------------------------------------
# LAMB


def numpy_lamb_step(w, m, v, grad, lr, step, decay):
    """One LAMB update (bias-corrected moments, decoupled decay, trust ratio when
    ``decay``)."""
    m = BETA_1 * m + (1 - BETA_1) * grad
    v = BETA_2 * v + (1 - BETA_2) * grad ** 2
    m_hat, v_hat = m / (1 - BETA_1 ** step), v / (1 - BETA_2 ** step)
    update = m_hat / (np.sqrt(v_hat) + EPSILON)
    ratio = 1.0
    if decay:
        update = update + decay * w
        ratio = np.linalg.norm(w) / np.linalg.norm(update)
    return w - lr * ratio * update, m, v


def test_lamb_matches_numpy_over_several_steps():
    init_lr, num_train_steps, steps = 0.05, 10, 5
    start = {"layer/kernel": np.array([[0.3, -0.2], [0.1, 0.7]], np.float32),
             "layer/bias": np.array([0.05, 0.0], np.float32),
             "LayerNorm/gamma": np.array([1.0, 0.9], np.float32)}
    coefficients = {"layer/kernel": np.array([[2.0, -1.0], [0.5, 3.0]], np.float32),
                    "layer/bias": np.array([0.1, -0.3], np.float32),
                    "LayerNorm/gamma": np.array([0.4, -0.2], np.float32)}
    with tf.Graph().as_default(), tf.Session() as sess:
        variables = {name: tf.get_variable(name, initializer=value)
                     for name, value in start.items()}
        # Gradient c + w (the clip acts: the global norm is above 1 at the start).
        loss = tf.add_n([tf.reduce_sum(coefficients[name] * var) + 0.5 * tf.reduce_sum(
            tf.square(var)) for name, var in variables.items()])
        train_op = optimization.create_optimizer(loss, init_lr, num_train_steps, 0, False,
                                                 optimizer="lamb")
        sess.run(tf.global_variables_initializer())
        w = {name: value.astype(np.float64) for name, value in start.items()}
        m = {name: np.zeros_like(value) for name, value in w.items()}
        v = {name: np.zeros_like(value) for name, value in w.items()}
        clipped = 0
        for step in range(steps):
            grads = {name: coefficients[name] + w[name] for name in w}
            norm = np.sqrt(sum((g ** 2).sum() for g in grads.values()))
            clipped += norm > 1.0
            grads = {name: g / max(norm, 1.0) for name, g in grads.items()}
            lr = init_lr * (1.0 - step / float(num_train_steps))
            for name in w:
                decay = DECAY if name == "layer/kernel" else 0.0
                w[name], m[name], v[name] = numpy_lamb_step(
                    w[name], m[name], v[name], grads[name], lr, step + 1, decay)
            sess.run(train_op)
            for name, var in variables.items():
                np.testing.assert_allclose(sess.run(var), w[name], rtol=1e-5, atol=1e-6,
                                           err_msg="%s, step %d" % (name, step + 1))
        assert clipped
        slots = {var.op.name for var in tf.global_variables()}
    # Adam's slot names: the checkpoint keeps the released layout.
    assert slots == set(start) | {"global_step"} | {
        name + suffix for name in start for suffix in ("/adam_m", "/adam_v")}


def test_lamb_scales_each_layer_by_its_trust_ratio():
    """Two kernels whose weights differ 100-fold, same gradient: LAMB's steps differ
    100-fold (Adam's would be equal)."""
    with tf.Graph().as_default(), tf.Session() as sess:
        small = tf.get_variable("small/kernel", initializer=np.full([4], 0.01, np.float32))
        large = tf.get_variable("large/kernel", initializer=np.full([4], 1.0, np.float32))
        loss = 0.1 * tf.reduce_sum(small) + 0.1 * tf.reduce_sum(large)
        train_op = optimization.create_optimizer(loss, 0.01, 10, 0, False, optimizer="lamb")
        sess.run(tf.global_variables_initializer())
        sess.run(train_op)
        moved_small = 0.01 - sess.run(small)
        moved_large = 1.0 - sess.run(large)
    np.testing.assert_allclose(moved_large / moved_small, 100.0, rtol=1e-3)


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="lamb"):
        optimization.make_optimizer("sgd", 0.1, None)
