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


def mean_share(values, total_count=None):
    """This replica's share of the global batch's mean of ``values`` (any shape; every
    replica holds as many): tf.reduce_mean(values) without a strategy.

    With ``total_count``, the number of values in the whole update (every replica's and
    every micro-batch's of gradient accumulation), the share is sum(values) / total_count.
    """
    if total_count is not None:
        return tf.reduce_sum(values) / float(total_count)
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


OPTIMIZERS = ("adamw", "lamb")
"""--optimizer values: Adam with decoupled weight decay (the original), or LAMB."""


def make_optimizer(name, learning_rate, global_step):
    """The optimizer ``name`` (OPTIMIZERS) with BERT's settings: betas 0.9 and 0.999,
    epsilon 1e-6, weight decay 0.01 except for LayerNorm and bias variables."""
    options = dict(learning_rate=learning_rate, weight_decay_rate=WEIGHT_DECAY_RATE,
                   beta_1=0.9, beta_2=0.999, epsilon=1e-6,
                   exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY)
    if name == "lamb":
        return LambOptimizer(global_step=global_step, **options)
    if name != "adamw":
        raise ValueError("unknown optimizer %r (use %s)" % (name, " or ".join(OPTIMIZERS)))
    return AdamWeightDecayOptimizer(**options)


def create_optimizer(loss, init_lr, num_train_steps, num_warmup_steps, use_tpu,
                     loss_scale=None, optimizer="adamw", accumulation_steps=1):
    """Builds the train op for loss over all trainable variables.

    The gradients are summed over the replicas (under a tf.distribute strategy), clipped
    to global norm 1.0 and applied by the optimizer (AdamWeightDecayOptimizer, or
    LambOptimizer; wrapped in tf.tpu.CrossShardOptimizer when use_tpu, which sums the
    TPU cores' gradients, as in the original release) with the learning_rate_schedule;
    the global step is incremented by one per update, after it.

    With ``accumulation_steps`` K > 1 every run adds its gradients to accumulators
    (GradientAccumulator) and every K-th run clips and applies their sum: K runs on
    micro-batches make one update, and the global step (hence the schedule) counts
    updates. The loss of each micro-batch must then be its share of the whole update's
    loss (normalised by the update's counts), so that the shares add up to it.

    With a ``loss_scale`` (float16) an update whose gradients are not finite is skipped:
    no variable changes, the global step and the schedule stay where they are (as in
    NVIDIA's BERT: the run still makes num_train_steps real updates), the scale halves.

    Args:
      loss: scalar float32 loss; under a strategy, this replica's share of the global
        batch's loss (see replica_sum).
      init_lr: peak learning rate.
      num_train_steps: total training steps (end of the linear decay).
      num_warmup_steps: linear warmup steps.
      use_tpu: sum gradients across TPU shards.
      loss_scale: a DynamicLossScale (float16 compute), or None.
      optimizer: a name of OPTIMIZERS.
      accumulation_steps: runs (micro-batches) per update.

    Returns:
      The train op.
    """
    global_step = tf.train.get_or_create_global_step()
    learning_rate = learning_rate_schedule(init_lr, num_train_steps, num_warmup_steps,
                                           global_step)
    optimizer = make_optimizer(optimizer, learning_rate, global_step)
    if use_tpu:
        optimizer = tf.tpu.CrossShardOptimizer(optimizer)

    tvars = tf.trainable_variables()
    grads = _gradients(loss, tvars, loss_scale)
    conditions = []
    if accumulation_steps > 1:
        accumulator = GradientAccumulator(tvars, accumulation_steps)
        grads, ready = accumulator.add(grads)
        conditions.append(ready)
    else:
        ready = None
    if loss_scale is not None:
        conditions.append(all_finite(grads))

    def apply():
        clipped, _ = tf.clip_by_global_norm(grads, clip_norm=CLIP_NORM)
        return optimizer.apply_gradients(zip(clipped, tvars))

    if not conditions:
        train_op = apply()
        increment = 1
    else:
        applies = tf.reduce_all(tf.stack(conditions))
        optimizer.create_slots(tvars)  # outside the condition: variables cannot be made in it
        train_op = tf.cond(applies, lambda: _group_with_output(apply()),
                           lambda: tf.constant(False))
        if loss_scale is not None:
            train_op = tf.group(train_op, loss_scale.update(conditions[-1], ready))
        increment = tf.cast(applies, tf.int64)
    # The optimizers leave the global step alone; advance it here, once, after the
    # update, so the update always sees the step's own learning rate. (Under a strategy
    # the global step is updated once, in the merge of all replicas, which waits for
    # every replica's update.)
    with tf.control_dependencies([train_op]):
        increment = tf.assign_add(global_step, increment)
    return tf.group(train_op, increment)


def _gradients(loss, tvars, loss_scale=None):
    """The gradients of ``loss`` for ``tvars``, summed over the replicas; with a
    ``loss_scale`` taken of the scaled loss and scaled back (dense)."""
    if loss_scale is None:
        return _all_reduce_gradients(tf.gradients(loss, tvars))
    scale = loss_scale.value()
    grads = _all_reduce_gradients(tf.gradients(loss * scale, tvars))
    return [None if grad is None else tf.convert_to_tensor(grad) / scale for grad in grads]


def _group_with_output(op):
    """A boolean tensor (True) computed after ``op``: a tf.cond branch needs an output."""
    with tf.control_dependencies([op]):
        return tf.constant(True)


def all_finite(grads):
    """A boolean scalar: no gradient of ``grads`` (None entries skipped) holds inf or nan."""
    checks = [tf.reduce_all(tf.is_finite(grad)) for grad in grads if grad is not None]
    return tf.reduce_all(tf.stack(checks))


ACCUMULATOR_SUFFIX = "/grad_accum"
MICRO_STEP_NAME = "grad_accum_micro_steps"


class GradientAccumulator(object):
    """Sums the gradients of K runs (micro-batches) before one update.

    Variables (not trainable; in checkpoints beside the model, which conversion and
    warm start skip): ``<variable>/grad_accum`` (float32, the variable's shape) and
    ``grad_accum_micro_steps`` (int64, the runs summed so far in this update, 0 between
    updates, so every checkpoint, written after an update, holds 0 and a run resumes
    with any K). Under a strategy each replica updates its own copies with the same
    all-reduced gradients, so the copies stay equal.
    """

    def __init__(self, tvars, steps):
        self.steps = int(steps)
        self.sums = [tf.get_variable(
            _variable_name(var.name) + ACCUMULATOR_SUFFIX, shape=var.shape.as_list(),
            dtype=tf.float32, trainable=False, initializer=tf.zeros_initializer(),
            use_resource=True) for var in tvars]
        self.count = tf.get_variable(
            MICRO_STEP_NAME, shape=[], dtype=tf.int64, trainable=False, use_resource=True,
            initializer=tf.zeros_initializer(),
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def add(self, grads):
        """(sums, ready): the gradients summed over this update's runs so far, this
        run's included (None where ``grads`` holds None), and a boolean scalar, True on
        the K-th run (then the count restarts at 0)."""
        count = tf.raw_ops.ReadVariableOp(resource=self.count.handle, dtype=tf.int64)
        first = tf.equal(count, 0)
        sums, updates = [], []
        for grad, total in zip(grads, self.sums):
            if grad is None:
                sums.append(None)
                continue
            old = tf.raw_ops.ReadVariableOp(resource=total.handle, dtype=tf.float32)
            # A select, not old * 0: an old sum that is not finite (a skipped float16
            # update) must not leak into the next update.
            new = tf.where(first, tf.convert_to_tensor(grad), old + grad)
            updates.append(tf.raw_ops.AssignVariableOp(resource=total.handle, value=new))
            sums.append(new)
        ready = count + 1 >= self.steps
        updates.append(tf.raw_ops.AssignVariableOp(
            resource=self.count.handle, value=tf.where(ready, tf.constant(0, tf.int64),
                                                       count + 1)))
        with tf.control_dependencies(updates):
            sums = [None if total is None else tf.identity(total) for total in sums]
            return sums, tf.identity(ready)


def _variable_name(name):
    """A variable's name without its ":<output index>" suffix."""
    match = re.match("^(.*):\\d+$", name)
    return match.group(1) if match is not None else name


class DynamicLossScale(object):
    """The loss scale of float16 training, adjusted as training goes.

    The loss is multiplied by the scale before the gradients are taken and the
    gradients are divided by it (after the all-reduce), so small float16 gradients do
    not underflow. The scale starts at ``initial_scale`` (2^15). An update whose
    gradients hold an inf or a nan is skipped (no variable and no Adam slot changes, and
    neither the global step nor the learning-rate schedule advances: the step is made
    again on the next batch), the scale is halved (not below 1) and the run of finite
    updates restarts; after ``growth_interval`` (2000) finite updates in a row the scale
    doubles. With gradient accumulation the scale moves once per update.

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

    def update(self, finite, ready=None):
        """The op setting the next step's scale from this step's ``finite`` (bool); with
        ``ready`` (bool, gradient accumulation) only when it is True, at an update."""
        scale = self.value()
        old_good = tf.identity(self.good_steps)
        good = old_good + 1
        grow = tf.logical_and(finite, good >= self.growth_interval)
        new_scale = tf.where(finite, tf.where(grow, scale * 2.0, scale),
                             tf.maximum(scale * 0.5, 1.0))
        new_good = tf.where(tf.logical_and(finite, tf.logical_not(grow)), good,
                            tf.zeros_like(good))
        if ready is not None:
            new_scale = tf.where(ready, new_scale, scale)
            new_good = tf.where(ready, new_good, old_good)
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


class LambOptimizer(AdamWeightDecayOptimizer):
    """LAMB (You et al. 2019, https://arxiv.org/abs/1904.00962): Adam's step with weight
    decay, rescaled for each variable by its trust ratio.

    For each variable w with gradient g, at update t = global_step + 1:
        m <- beta_1 m + (1 - beta_1) g;   v <- beta_2 v + (1 - beta_2) g^2
        r = (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon) + weight_decay_rate w
        w <- w - lr * (|w| / |r|) * r
    with |.| the L2 norm of the whole variable, and the trust ratio |w| / |r| taken as 1
    when either norm is 0. Variables matching exclude_from_weight_decay (LayerNorm,
    bias) get neither decay nor trust ratio (as NVIDIA's BERT and TensorFlow Addons do).
    The moments keep Adam's slot names (adam_m, adam_v), so a checkpoint keeps the
    released layout.
    """

    def __init__(self, learning_rate, global_step, name="LambOptimizer", **options):
        super(LambOptimizer, self).__init__(learning_rate, name=name, **options)
        self.global_step = global_step

    def _apply_one(self, grad, param):
        param_name = self._get_variable_name(param.name)
        m, v = self._slot_pair(param)
        dtype = param.dtype.base_dtype
        step = tf.cast(self.global_step, dtype) + 1.0
        m_new = self.beta_1 * m + (1.0 - self.beta_1) * grad
        v_new = self.beta_2 * v + (1.0 - self.beta_2) * tf.square(grad)
        m_hat = m_new / (1.0 - tf.pow(tf.constant(self.beta_1, dtype), step))
        v_hat = v_new / (1.0 - tf.pow(tf.constant(self.beta_2, dtype), step))
        update = m_hat / (tf.sqrt(v_hat) + self.epsilon)
        ratio = tf.constant(1.0, dtype)
        if self._do_use_weight_decay(param_name):
            update += self.weight_decay_rate * param
            w_norm, r_norm = tf.norm(param), tf.norm(update)
            ratio = tf.where(tf.logical_and(w_norm > 0.0, r_norm > 0.0),
                             w_norm / tf.maximum(r_norm, 1e-30), ratio)
        step_size = tf.cast(self.learning_rate, dtype) * ratio
        with tf.control_dependencies([m_new, v_new, update]):
            return tf.group(_assign(m, m_new), _assign(v, v_new),
                            _assign(param, param - step_size * update))


def _assign(variable, value):
    """Sets ``variable`` (a resource variable through its handle: in a replica, that
    replica's copy) to ``value``."""
    if variable.dtype == variable.dtype.base_dtype:
        return tf.raw_ops.AssignVariableOp(resource=variable.handle, value=value)
    return tf.assign(variable, value).op
