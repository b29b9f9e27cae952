"""BERT training op: Adam with decoupled weight decay, warmup and linear decay.

The optimizer keeps the original slot names (`<variable>/adam_m`, `<variable>/adam_v`),
so training resumes from original BERT checkpoints that hold optimizer state.
"""

import re

from krbert.tf_compat import tf

WEIGHT_DECAY_RATE = 0.01
EXCLUDE_FROM_WEIGHT_DECAY = ["LayerNorm", "layer_norm", "bias"]
CLIP_NORM = 1.0


def learning_rate_schedule(init_lr, num_train_steps, num_warmup_steps, global_step=None):
    """The learning rate at global_step, a float32 scalar tensor.

    Linear warmup, init_lr * step / num_warmup_steps, while step < num_warmup_steps;
    afterwards linear (power 1.0 polynomial) decay, init_lr * (1 - step /
    num_train_steps), reaching 0.0 at num_train_steps and staying there.

    Args:
      init_lr: peak learning rate.
      num_train_steps: steps of the decay (> 0).
      num_warmup_steps: warmup steps; 0 or None for no warmup.
      global_step: integer step tensor; the graph's global step when None.
    """
    if global_step is None:
        global_step = tf.train.get_or_create_global_step()
    step = tf.cast(global_step, tf.float32)
    decay_steps = float(num_train_steps)
    progress = tf.minimum(step, decay_steps) / decay_steps
    learning_rate = init_lr * (1.0 - progress)
    if num_warmup_steps:
        warmup_learning_rate = init_lr * (step / float(num_warmup_steps))
        is_warmup = tf.cast(tf.cast(global_step, tf.int64) < int(num_warmup_steps), tf.float32)
        learning_rate = (1.0 - is_warmup) * learning_rate + is_warmup * warmup_learning_rate
    return tf.identity(learning_rate, name="learning_rate")


def create_optimizer(loss, init_lr, num_train_steps, num_warmup_steps, use_tpu):
    """Builds the train op for loss over all trainable variables.

    Gradients are clipped to global norm 1.0 and applied by AdamWeightDecayOptimizer
    (wrapped in tf.tpu.CrossShardOptimizer when use_tpu) with the
    learning_rate_schedule; the global step is incremented by one per run, after
    the update.

    Args:
      loss: scalar float32 loss.
      init_lr: peak learning rate.
      num_train_steps: total training steps (end of the linear decay).
      num_warmup_steps: linear warmup steps.
      use_tpu: sum gradients across TPU shards.

    Returns:
      The train op.
    """
    global_step = tf.train.get_or_create_global_step()
    learning_rate = learning_rate_schedule(init_lr, num_train_steps, num_warmup_steps,
                                           global_step)
    optimizer = AdamWeightDecayOptimizer(
        learning_rate=learning_rate,
        weight_decay_rate=WEIGHT_DECAY_RATE,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-6,
        exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY)
    if use_tpu:
        optimizer = tf.tpu.CrossShardOptimizer(optimizer)

    tvars = tf.trainable_variables()
    grads = tf.gradients(loss, tvars)
    (grads, _) = tf.clip_by_global_norm(grads, clip_norm=CLIP_NORM)
    train_op = optimizer.apply_gradients(zip(grads, tvars), global_step=global_step)
    # AdamWeightDecayOptimizer leaves the global step alone; advance it here, once,
    # after the update, so the update always sees the step's own learning rate.
    with tf.control_dependencies([train_op]):
        increment = tf.assign_add(global_step, 1)
    return tf.group(train_op, increment)


class AdamWeightDecayOptimizer(tf.train.Optimizer):
    """Adam without bias correction, with weight decay decoupled from the gradient.

    For each variable w with gradient g:
        m <- beta_1 m + (1 - beta_1) g
        v <- beta_2 v + (1 - beta_2) g^2
        w <- w - lr (m / (sqrt(v) + epsilon) + weight_decay_rate w)
    The decay term is left out for variables whose name matches a pattern of
    exclude_from_weight_decay (regular expressions searched in the name).
    """

    def __init__(self,
                 learning_rate,
                 weight_decay_rate=0.0,
                 beta_1=0.9,
                 beta_2=0.999,
                 epsilon=1e-6,
                 exclude_from_weight_decay=None,
                 name="AdamWeightDecayOptimizer"):
        super(AdamWeightDecayOptimizer, self).__init__(False, name)
        self.learning_rate = learning_rate
        self.weight_decay_rate = weight_decay_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.exclude_from_weight_decay = exclude_from_weight_decay

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """Returns an op applying one update to every (gradient, variable) pair.

        Pairs with a None gradient are skipped. No variable changes before every
        gradient is computed (a gradient may read any variable). global_step is not
        incremented (create_optimizer does it).
        """
        pairs = []
        for (grad, param) in grads_and_vars:
            if grad is None or param is None:
                continue
            if isinstance(grad, tf.IndexedSlices):
                grad = tf.convert_to_tensor(grad)
            pairs.append((grad, param))
        with tf.control_dependencies([grad for grad, _ in pairs]):
            updates = [self._apply_one(grad, param) for grad, param in pairs]
        return tf.group(*updates, name=name)

    def _apply_one(self, grad, param):
        """The op updating param and its two slots for one gradient.

        The decay, param -= lr * weight_decay_rate * param, runs first (on the old
        value); then one fused kernel (ApplyAdam with both bias-correction powers at
        0, which turns the correction off) updates m, v and param together.
        """
        param_name = self._get_variable_name(param.name)
        is_resource = param.dtype == param.dtype.base_dtype
        m = self._slot_variable(param_name + "/adam_m", param, is_resource)
        v = self._slot_variable(param_name + "/adam_v", param, is_resource)
        dtype = param.dtype.base_dtype
        learning_rate = tf.cast(self.learning_rate, dtype)

        dependencies = []
        if self._do_use_weight_decay(param_name):
            decay = (learning_rate * self.weight_decay_rate) * param
            dependencies.append(param.assign_sub(decay, use_locking=self._use_locking))
        with tf.control_dependencies(dependencies):
            zero = tf.constant(0.0, dtype=dtype)
            arguments = dict(
                beta1_power=zero, beta2_power=zero, lr=learning_rate,
                beta1=tf.constant(self.beta_1, dtype=dtype),
                beta2=tf.constant(self.beta_2, dtype=dtype),
                epsilon=tf.constant(self.epsilon, dtype=dtype),
                grad=grad, use_locking=self._use_locking)
            if is_resource:
                return tf.raw_ops.ResourceApplyAdam(
                    var=param.handle, m=m.handle, v=v.handle, **arguments)
            return tf.raw_ops.ApplyAdam(var=param, m=m, v=v, **arguments).op

    @staticmethod
    def _slot_variable(name, param, use_resource):
        """A non-trainable variable of the param's shape and kind, initialized to 0."""
        return tf.get_variable(
            name=name,
            shape=param.shape.as_list(),
            dtype=param.dtype.base_dtype,
            trainable=False,
            initializer=tf.zeros_initializer(),
            use_resource=use_resource)

    def _do_use_weight_decay(self, param_name):
        """Whether weight decay applies to the variable named param_name."""
        if not self.weight_decay_rate:
            return False
        for pattern in self.exclude_from_weight_decay or []:
            if re.search(pattern, param_name) is not None:
                return False
        return True

    @staticmethod
    def _get_variable_name(param_name):
        """The variable name without its ":<output index>" suffix."""
        match = re.match("^(.*):\\d+$", param_name)
        if match is not None:
            return match.group(1)
        return param_name
