"""BERT training op: Adam with decoupled weight decay, warmup and linear decay.

The optimizer keeps the original slot names (`<variable>/adam_m`, `<variable>/adam_v`),
so training resumes from original BERT checkpoints that hold optimizer state.

Replicas. Under a tf.distribute strategy (Estimator's train_distribute: several GPUs, CPU
replicas or workers) the model_fn, and so create_optimizer, runs once per replica. Each
replica's loss is then its share of the global batch's loss (the shares add up to it:
see replica_sum), its gradients are all-reduced before the global-norm clip, and every
replica applies the same update to its copy of the variables, so N replicas with a global
batch B make the step one device makes with B. Without a strategy (one device, the
TPUEstimator) the graph is the original's.

float16. With a DynamicLossScale the loss is scaled up before the gradients are taken
and they are scaled back before the clip; a step whose gradients are not finite is
skipped (see DynamicLossScale).
"""

import re

from krbert.tf_compat import tf

WEIGHT_DECAY_RATE = 0.01
EXCLUDE_FROM_WEIGHT_DECAY = ["LayerNorm", "layer_norm", "bias"]
CLIP_NORM = 1.0


# ----------------------------------------------------------------------------------
# Replicas.
# ----------------------------------------------------------------------------------

def replica_context():
    """The tf.distribute ReplicaContext while a strategy builds the graph once per
    replica; None without a strategy (one device, the TPUEstimator) or outside the
    per-replica code."""
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return None
    return tf.distribute.get_replica_context()


def replica_sum(tensors):
    """``tensors`` (a tensor or a nest of them) summed over the replicas, in one
    all-reduce that passes no gradient back; ``tensors`` themselves without a strategy.

    A per-example mean over the global batch is, on each replica, its own sum divided by
    replica_sum(its own count): these shares add up over the replicas to the mean a
    single device computes on the whole batch, and so do their gradients.
    """
    context = replica_context()
    if context is None:
        return tensors
    totals = _all_reduce_sum(context, tf.nest.map_structure(tf.stop_gradient, tensors))
    # A copy can be fetched: the grouped all-reduce itself may be rewritten away
    # (MultiWorkerMirroredStrategy's scoped-allocator rewrite), failing a fetch by name.
    return tf.nest.map_structure(tf.identity, totals)


def _all_reduce_sum(context, tensors):
    """``tensors`` (a nest) summed over the replicas of ``context``, in one batch.

    ReplicaContext.all_reduce would do the same but wraps it in a custom gradient that
    looks the replicas' variables up by name and fails on their copies; the gradients
    and counts summed here need no gradient.
    """
    flat = tf.nest.flatten(tensors)

    def reduce_all(strategy, *values):
        return strategy.extended.batch_reduce_to(
            tf.distribute.ReduceOp.SUM, [(value, value) for value in values])

    return tf.nest.pack_sequence_as(tensors, context.merge_call(reduce_all, args=flat))


def mean_share(values):
    """This replica's share of the global batch's mean of ``values`` (any shape; every
    replica holds as many): tf.reduce_mean(values) without a strategy."""
    context = replica_context()
    if context is None:
        return tf.reduce_mean(values)
    count = tf.cast(tf.size(values) * context.num_replicas_in_sync, tf.float32)
    return tf.reduce_sum(values) / count


def is_first_replica():
    """True while building replica 0's graph, or without a strategy (for summaries,
    which one replica writes)."""
    context = replica_context()
    if context is None:
        return True
    return int(tf.get_static_value(context.replica_id_in_sync_group)) == 0


def _all_reduce_gradients(grads):
    """The gradients summed over the replicas (dense); as they are without a strategy."""
    context = replica_context()
    if context is None:
        return grads
    present = [i for i, grad in enumerate(grads) if grad is not None]
    dense = [tf.convert_to_tensor(grads[i]) for i in present]
    reduced = _all_reduce_sum(context, dense)
    grads = list(grads)
    for i, grad in zip(present, reduced):
        grads[i] = grad
    return grads


# ----------------------------------------------------------------------------------
# The schedule and the train op.
# ----------------------------------------------------------------------------------

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


def create_optimizer(loss, init_lr, num_train_steps, num_warmup_steps, use_tpu,
                     loss_scale=None):
    """Builds the train op for loss over all trainable variables.

    The gradients are summed over the replicas (under a tf.distribute strategy), clipped
    to global norm 1.0 and applied by AdamWeightDecayOptimizer (wrapped in
    tf.tpu.CrossShardOptimizer when use_tpu, which averages the TPU cores' clipped
    gradients, as in the original release) with the learning_rate_schedule; the global
    step is incremented by one per run, after the update.

    Args:
      loss: scalar float32 loss; under a strategy, this replica's share of the global
        batch's loss (see replica_sum).
      init_lr: peak learning rate.
      num_train_steps: total training steps (end of the linear decay).
      num_warmup_steps: linear warmup steps.
      use_tpu: sum gradients across TPU shards.
      loss_scale: a DynamicLossScale (float16 compute), or None.

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
    if loss_scale is None:
        grads = _all_reduce_gradients(tf.gradients(loss, tvars))
        (grads, _) = tf.clip_by_global_norm(grads, clip_norm=CLIP_NORM)
        train_op = optimizer.apply_gradients(zip(grads, tvars), global_step=global_step)
    else:
        scale = loss_scale.value()
        grads = _all_reduce_gradients(tf.gradients(loss * scale, tvars))
        grads = [None if grad is None else tf.convert_to_tensor(grad) / scale
                 for grad in grads]
        finite = all_finite(grads)
        (grads, _) = tf.clip_by_global_norm(grads, clip_norm=CLIP_NORM)
        optimizer.create_slots(tvars)  # outside the condition: variables cannot be made in it
        apply = tf.cond(finite, lambda: _group_with_output(
            optimizer.apply_gradients(zip(grads, tvars))), lambda: tf.constant(False))
        train_op = tf.group(apply, loss_scale.update(finite))
    # AdamWeightDecayOptimizer leaves the global step alone; advance it here, once,
    # after the update, so the update always sees the step's own learning rate. (Under
    # a strategy the global step is updated once, in the merge of all replicas, which
    # waits for every replica's update.)
    with tf.control_dependencies([train_op]):
        increment = tf.assign_add(global_step, 1)
    return tf.group(train_op, increment)


def _group_with_output(op):
    """A boolean tensor (True) computed after ``op``: a tf.cond branch needs an output."""
    with tf.control_dependencies([op]):
        return tf.constant(True)


def all_finite(grads):
    """A boolean scalar: no gradient of ``grads`` (None entries skipped) holds inf or nan."""
    checks = [tf.reduce_all(tf.is_finite(grad)) for grad in grads if grad is not None]
    return tf.reduce_all(tf.stack(checks))


class DynamicLossScale(object):
    """The loss scale of float16 training, adjusted as training goes.

    The loss is multiplied by the scale before the gradients are taken and the
    gradients are divided by it (after the all-reduce), so small float16 gradients do
    not underflow. The scale starts at ``initial_scale`` (2^15). A step whose gradients
    hold an inf or a nan is skipped (no variable and no Adam slot changes; the global
    step still advances), the scale is halved (not below 1) and the run of finite steps
    restarts; after ``growth_interval`` (2000) finite steps in a row the scale doubles.

    Variables (not trainable, in checkpoints): ``loss_scale`` (float32) and
    ``loss_scale_good_steps`` (int64, the current run of finite steps). Under a
    strategy every replica sees the same all-reduced gradients, hence the same
    decision; the variables are updated once, from the first replica.
    """

    def __init__(self, initial_scale=2.0 ** 15, growth_interval=2000):
        self.growth_interval = int(growth_interval)
        only_first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.scale = tf.get_variable(
            "loss_scale", shape=[], dtype=tf.float32, trainable=False, use_resource=True,
            initializer=tf.constant_initializer(initial_scale), aggregation=only_first)
        self.good_steps = tf.get_variable(
            "loss_scale_good_steps", shape=[], dtype=tf.int64, trainable=False,
            use_resource=True, initializer=tf.zeros_initializer(), aggregation=only_first)
        self._value = None

    def value(self):
        """The scale of this step (read once, before update())."""
        if self._value is None:
            self._value = tf.identity(self.scale)
        return self._value

    def update(self, finite):
        """The op setting the next step's scale from this step's ``finite`` (bool)."""
        scale = self.value()
        good = tf.identity(self.good_steps) + 1
        grow = tf.logical_and(finite, good >= self.growth_interval)
        new_scale = tf.where(finite, tf.where(grow, scale * 2.0, scale),
                             tf.maximum(scale * 0.5, 1.0))
        new_good = tf.where(tf.logical_and(finite, tf.logical_not(grow)), good,
                            tf.zeros_like(good))
        return tf.group(self.scale.assign(new_scale), self.good_steps.assign(new_good))


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
        self._slot_pairs = {}

    def create_slots(self, params):
        """Creates (once) the adam_m and adam_v slots of every variable of ``params``."""
        for param in params:
            self._slot_pair(param)

    def _slot_pair(self, param):
        """(m, v): the slot variables of ``param``, created on first use."""
        slots = self._slot_pairs
        param_name = self._get_variable_name(param.name)
        if param_name not in slots:
            is_resource = param.dtype == param.dtype.base_dtype
            slots[param_name] = (self._slot_variable(param_name + "/adam_m", param, is_resource),
                                 self._slot_variable(param_name + "/adam_v", param, is_resource))
        return slots[param_name]

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        """Returns an op applying one update to every (gradient, variable) pair.

        Pairs with a None gradient are skipped. No variable changes before every
        gradient is computed (a gradient may read any variable). global_step is not
        incremented (create_optimizer does it). Under a tf.distribute strategy this
        runs in each replica and updates that replica's copy of each variable (the
        gradients, all-reduced, are the same in every replica, so the copies stay
        equal).
        """
        pairs = []
        for (grad, param) in grads_and_vars:
            if grad is None or param is None:
                continue
            if isinstance(grad, tf.IndexedSlices):
                grad = tf.convert_to_tensor(grad)
            pairs.append((grad, param))
        self.create_slots([param for _, param in pairs])
        with tf.control_dependencies([grad for grad, _ in pairs]):
            updates = [self._apply_one(grad, param) for grad, param in pairs]
        return tf.group(*updates, name=name)

    def _apply_one(self, grad, param):
        """The op updating param and its two slots for one gradient.

        The decay, param -= lr * weight_decay_rate * param, runs first (on the old
        value); then one fused kernel (ApplyAdam with both bias-correction powers at
        0, which turns the correction off) updates m, v and param together. Resource
        variables are updated through their handle: in a replica, the handle of that
        replica's copy.
        """
        param_name = self._get_variable_name(param.name)
        is_resource = param.dtype == param.dtype.base_dtype
        m, v = self._slot_pair(param)
        dtype = param.dtype.base_dtype
        learning_rate = tf.cast(self.learning_rate, dtype)

        dependencies = []
        if self._do_use_weight_decay(param_name):
            decay = (learning_rate * self.weight_decay_rate) * param
            if is_resource:
                dependencies.append(tf.raw_ops.AssignSubVariableOp(resource=param.handle,
                                                                   value=decay))
            else:
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
