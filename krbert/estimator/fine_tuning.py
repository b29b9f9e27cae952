"""The training step that every fine-tuning script's model_fn ends in (run_classifier.py,
run_ner.py, run_squad.py): AdamW with warm-up and linear decay (optimization.py), a
dynamic loss scale when the model computes in float16, the global batch's loss under a
tf.distribute strategy, and the CPU/GPU log of step and loss (no flags).
"""

import optimization
from krbert.tf_compat import tf, tpu_estimator


def train_spec(loss, scaffold_fn, learning_rate, num_train_steps, num_warmup_steps, use_tpu,
               compute_dtype, log_every_n_steps):
    """The TPUEstimatorSpec of a TRAIN call for the scalar ``loss`` of one replica's batch.

    Under a strategy the summed loss of every replica (the global batch's) is computed on
    every step and logged; on the TPU nothing is logged from the host (the TPUEstimator
    logs the loss itself).
    """
    loss_scale = optimization.DynamicLossScale() if compute_dtype == tf.float16 else None
    train_op = optimization.create_optimizer(loss, learning_rate, num_train_steps,
                                             num_warmup_steps, use_tpu, loss_scale=loss_scale)
    global_loss = optimization.replica_sum(loss)
    if optimization.replica_context() is not None:
        train_op = tf.group(train_op, global_loss)  # all-reduced every step
    hooks = []
    if not use_tpu:
        hooks.append(tf.train.LoggingTensorHook(
            {"step": tf.train.get_or_create_global_step(), "loss": global_loss},
            every_n_iter=log_every_n_steps))
    return tpu_estimator.TPUEstimatorSpec(mode=tf.estimator.ModeKeys.TRAIN, loss=loss,
                                          train_op=train_op, training_hooks=hooks,
                                          scaffold_fn=scaffold_fn)
