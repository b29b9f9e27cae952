"""The pretraining input_fn: TFRecords of create_pretraining_data.py read, shuffled,
batched and parsed for the TPUEstimator, the CPU, GPUs or tf.distribute replicas.

Every host of a TPU pod slice, every machine of a multi-worker job reads its own share;
with gradient accumulation every batch of an update is cut into its micro-batches, each
with the batch's mean masked-LM weight (UPDATE_WEIGHT), which normalises the losses.
Shapes: B batch size, P max_predictions_per_seq.
"""

import optimization
from krbert.estimator import distribution as distribution_lib
from krbert.pretraining import records as pretraining_records
from krbert.tf_compat import IS_TF2, tf


def interleave_files(files, cycle_length):
    """Reads ``cycle_length`` TFRecord files at once, in whatever order they are ready."""
    if IS_TF2:
        return files.interleave(tf.data.TFRecordDataset, cycle_length=cycle_length,
                                num_parallel_calls=cycle_length, deterministic=False)
    return files.apply(tf.data.experimental.parallel_interleave(
        tf.data.TFRecordDataset, cycle_length=cycle_length, sloppy=True))


def input_host(params):
    """(index, count) of this input pipeline among the TPU hosts that each run one
    (TPUEstimator's per-host input on a pod slice: v3-32 has 4 hosts), or among the
    machines of a multi-worker job (``params["input_pipeline"]``:
    distribution.pipeline_params); (0, 1) on one host, the CPU or GPUs."""
    if params.get("input_pipeline"):
        index, count = params["input_pipeline"]
        return int(index), int(count)
    context = params.get("context")
    try:
        _, index, count, _ = context.current_input_fn_deployment()
    except (AttributeError, TypeError, ValueError):
        return 0, 1
    return int(index), int(count)


def input_fn_builder(input_files, max_seq_length, max_predictions_per_seq, is_training,
                     num_cpu_threads=4, shuffle_buffer=100, seed=None, accumulation_steps=1):
    """The TPUEstimator input_fn: fixed-shape batches of ``params["batch_size"]``.

    Training reads the files in parallel, shuffles and repeats forever; eval reads
    them in order (repeated, since it runs a fixed number of steps). Records are
    batched first and parsed a batch at a time (one vectorized op per batch). On a pod
    slice every host, in a multi-worker job every machine, reads its own share of the
    training files (of the records, when there are fewer files than hosts), so they never
    feed the same examples.

    With ``accumulation_steps`` K > 1 (training) every batch is cut into K consecutive
    micro-batches [B/K, ...], each with the feature UPDATE_WEIGHT (the batch's mean
    masked-LM weight per example), which normalises every micro-batch's loss
    (update_totals).
    """
    spec = pretraining_records.feature_spec(max_seq_length, max_predictions_per_seq)

    def input_fn(params):
        batch_size = params["batch_size"]
        host, hosts = input_host(params)
        if is_training:
            files = tf.data.Dataset.from_tensor_slices(tf.constant(input_files))
            shard_files = hosts > 1 and len(input_files) >= hosts
            if shard_files:
                files = files.shard(hosts, host)
            files = files.repeat().shuffle(len(input_files), seed=seed)
            d = interleave_files(files, min(num_cpu_threads, len(input_files)))
            if hosts > 1 and not shard_files:
                d = d.shard(hosts, host)
            d = d.shuffle(shuffle_buffer, seed=seed)
        else:
            d = tf.data.TFRecordDataset(input_files).repeat()
        d = d.batch(batch_size, drop_remainder=True)
        d = d.map(lambda records: pretraining_records.parse_batch(records, spec),
                  num_parallel_calls=num_cpu_threads)
        if is_training and accumulation_steps > 1:
            d = distribution_lib.split_batches(d.map(with_update_weight), accumulation_steps)
        return d.prefetch(2)

    return input_fn


UPDATE_WEIGHT = "update_masked_lm_weight"


def with_update_weight(batch):
    """``batch`` with UPDATE_WEIGHT [B]: every example holds the batch's mean masked-LM
    weight per example (update_totals turns it back into the whole update's weight)."""
    weights = batch["masked_lm_weights"]
    count = tf.shape(weights)[:1]
    mean = tf.reduce_sum(weights) / tf.cast(count[0], tf.float32)
    return dict(batch, **{UPDATE_WEIGHT: tf.fill(count, mean)})


def update_totals(features, accumulation_steps, train_batch_size):
    """(masked-LM weight, examples) of the whole update a micro-batch belongs to, which
    normalise its losses; (None, None) without gradient accumulation (the heads then
    count the global batch, over the replicas).

    Each replica holds the mean weight of its pipeline's update batch; times its own
    examples and K, summed over the replicas, that is the weight of the whole update (every
    machine's share included).
    """
    if accumulation_steps <= 1:
        return None, None
    mean = features[UPDATE_WEIGHT]
    share = mean[0] * tf.cast(tf.shape(mean)[0] * accumulation_steps, tf.float32)
    return optimization.replica_sum(share), train_batch_size
