"""Training on several devices or machines through tf.distribute: the flags, their
checks, the strategy and the slice of each global batch every replica reads.

    --distribution=mirrored        every GPU of this machine (--num_gpus: the first N),
                                   tf.distribute.MirroredStrategy
    --num_cpu_replicas=N           N replicas on logical CPU devices (MirroredStrategy): a
                                   distributed run anyone can check without a GPU
    --distribution=multi_worker    every machine TF_CONFIG names (see cluster.py), with
                                   their GPUs (or CPU): MultiWorkerMirroredStrategy
    --use_fp16                     float16 compute with a dynamic loss scale (GPUs)

--train_batch_size stays the global batch. Each machine reads only its own share of the
input (by file, or by record when there are fewer files than machines: pipeline_params)
and each of its replicas a consecutive slice of that share (split_for_replicas); the
replicas' gradients are summed and every replica applies the same update
(optimization.py), so N replicas make the step one device makes with the whole batch (the
same examples when the input order is fixed: one file, --shuffle_buffer=1). Evaluation
and prediction run on one device (on the chief). Without these flags nothing changes: one
device, or the TPU, via TPUEstimator.
"""

import os

from krbert import cli
from krbert.estimator import cluster as cluster_lib
from krbert.tf_compat import tf

MIRRORED = "mirrored"
MULTI_WORKER = "multi_worker"
FP16_ON_CPU_VARIABLE = "KRBERT_FP16_ON_CPU"
"""Set to 1 (tests only) to let --use_fp16 run, slowly, on a machine without a GPU."""


def define_distribution_flags(flags):
    """Defines --distribution, --num_gpus, --num_cpu_replicas and --use_fp16 on ``flags``."""
    flags.DEFINE_string(
        "distribution", None,
        "GPUs/CPU through tf.distribute: 'mirrored' (the GPUs of this machine, or "
        "--num_cpu_replicas CPU replicas) or 'multi_worker' (every machine of TF_CONFIG). "
        "--train_batch_size stays the global batch. Not with --use_tpu.")
    flags.DEFINE_integer(
        "num_gpus", None,
        "Train on the first N GPUs of this machine (implies --distribution=mirrored "
        "unless multi_worker); default with --distribution: every visible GPU.")
    flags.DEFINE_integer(
        "num_cpu_replicas", 0,
        "Split the CPU into N logical devices and mirror the model over them (implies "
        "--distribution=mirrored): checks a distributed run without GPUs; not faster.")
    flags.DEFINE_float(
        "worker_timeout_secs", 30.0,
        "multi_worker: when another worker's port has stopped answering for this long "
        "while this one waits for it, stop the job (restart every worker to resume from "
        "the last checkpoint).")
    flags.DEFINE_bool(
        "use_fp16", False,
        "GPUs: compute in float16 (variables stay float32) with a dynamic loss scale; a "
        "step whose gradients are not finite is skipped and halves the scale. On the TPU "
        "use --use_bfloat16.")
    cluster_lib.define_cluster_flags(flags)


class Distribution(object):
    """A checked request for tf.distribute training; builds the strategy once.

    Attributes:
      kind: MIRRORED or MULTI_WORKER.
      devices: this machine's replica devices, e.g. ["/gpu:0", "/gpu:1"] or ["/cpu:0"].
      num_replicas: replicas in the whole job (every machine's devices).
      cluster: the cluster_lib.Cluster of TF_CONFIG (MULTI_WORKER), else None.
      worker_timeout: seconds a lost worker is waited for (MULTI_WORKER).
    """

    def __init__(self, kind, devices, num_replicas, cluster=None, worker_timeout=30.0):
        self.kind = kind
        self.devices = list(devices)
        self.num_replicas = num_replicas
        self.cluster = cluster
        self.worker_timeout = worker_timeout
        self._strategy = None

    @property
    def is_chief(self):
        """True for the process that writes checkpoints, summaries and results."""
        return self.cluster is None or cluster_lib.is_chief(self.cluster)

    @property
    def cpu_replicas(self):
        """Logical CPU devices the replicas need on this machine (0: none)."""
        if self.devices and all(d.startswith("/cpu:") for d in self.devices):
            return len(self.devices) if len(self.devices) > 1 else 0
        return 0

    def strategy(self):
        """The tf.distribute strategy (v1 API, as the Estimator needs), built once."""
        if self._strategy is None:
            logger = tf.get_logger()
            level = logger.level
            # TF 1.15 warns that logical CPU devices it has just made are "not visible".
            logger.setLevel("ERROR")
            try:
                if self.kind == MULTI_WORKER:
                    self._strategy = tf.distribute.experimental.MultiWorkerMirroredStrategy()
                else:
                    self._strategy = tf.distribute.MirroredStrategy(devices=self.devices)
            finally:
                logger.setLevel(level)
        return self._strategy

    def describe(self):
        """One line for the log: strategy, replicas, devices."""
        where = "%d device(s) here: %s" % (len(self.devices), ", ".join(self.devices))
        if self.cluster is not None:
            where += "; this is %s %d of %d tasks at %s" % (
                self.cluster.job, self.cluster.index, len(self.cluster.tasks),
                self.cluster.address)
        return "%s, %d replica(s) in sync (%s)" % (self.kind, self.num_replicas, where)


def gpu_count():
    """GPUs TensorFlow sees on this machine (0 with the CPU build)."""
    return len(tf.config.experimental.list_physical_devices("GPU"))


def _use_first_gpus(count):
    """Makes only the first ``count`` GPUs visible to TensorFlow (before any session)."""
    gpus = tf.config.experimental.list_physical_devices("GPU")
    if count < len(gpus):
        tf.config.experimental.set_visible_devices(gpus[:count], "GPU")


def _make_cpu_devices(count):
    """Splits the CPU into ``count`` logical devices /cpu:0 .. (before any session)."""
    cpus = tf.config.experimental.list_physical_devices("CPU")
    config = tf.config.experimental.VirtualDeviceConfiguration
    try:
        tf.config.experimental.set_virtual_device_configuration(
            cpus[0], [config() for _ in range(count)])
    except RuntimeError as e:  # TensorFlow has already started
        raise cli.InputError("--num_cpu_replicas=%d: the CPU devices could not be made (%s)"
                             % (count, cli.error_reason(e)))


def check_precision(FLAGS):  # pylint: disable=invalid-name
    """The compute dtype of the flags: tf.float16 (--use_fp16), tf.bfloat16
    (--use_bfloat16) or tf.float32; InputError for a combination that cannot run."""
    if not FLAGS.use_fp16:
        return tf.bfloat16 if getattr(FLAGS, "use_bfloat16", False) else tf.float32
    if getattr(FLAGS, "use_bfloat16", False):
        raise cli.InputError("--use_fp16 and --use_bfloat16 both given; pick one (float16 "
                             "on GPUs, bfloat16 on TPUs)")
    if FLAGS.use_tpu:
        raise cli.InputError("--use_fp16 is for GPUs; on the TPU use --use_bfloat16")
    if gpu_count() == 0 and os.environ.get(FP16_ON_CPU_VARIABLE) != "1":
        raise cli.InputError(
            "--use_fp16 needs a GPU, and TensorFlow sees none on this machine (the CPU "
            "build, or CUDA_VISIBLE_DEVICES hides them); drop --use_fp16, or install the "
            "GPU build: GPU=1 TF=2 scripts/setup.sh")
    return tf.float16


def from_flags(FLAGS, batch_sizes):  # pylint: disable=invalid-name
    """The Distribution the flags ask for, or None (one device, or the TPU).

    Call it early in main(), before any session: it may make logical CPU devices or hide
    GPUs. Raises InputError (one line) for --distribution with --use_tpu, more GPUs than
    there are, a malformed TF_CONFIG, or a global batch the replicas do not divide.

    Args:
      FLAGS: the script's flags (define_distribution_flags and the TPU flags).
      batch_sizes: {flag name: global batch size} to check, e.g.
        {"train_batch_size": 64}.
    """
    kind = (FLAGS.distribution or "").strip().lower() or None
    if kind not in (None, MIRRORED, MULTI_WORKER):
        raise cli.InputError("--distribution=%s: use mirrored (the GPUs of this machine, or "
                             "--num_cpu_replicas) or multi_worker (the machines of "
                             "TF_CONFIG)" % FLAGS.distribution)
    num_gpus, cpu_replicas = FLAGS.num_gpus, FLAGS.num_cpu_replicas
    if num_gpus is not None and num_gpus < 1:
        raise cli.InputError("--num_gpus=%d must be at least 1" % num_gpus)
    if cpu_replicas < 0:
        raise cli.InputError("--num_cpu_replicas=%d must be 0 or more" % cpu_replicas)
    if kind is None and (num_gpus or cpu_replicas):
        kind = MIRRORED
    if kind is None:
        return None
    if FLAGS.use_tpu:
        raise cli.InputError(
            "--distribution=%s (or --num_gpus/--num_cpu_replicas) trains on GPUs or the CPU "
            "through tf.distribute, --use_tpu on a TPU through TPUEstimator; drop one of "
            "them" % kind)
    if num_gpus and cpu_replicas:
        raise cli.InputError("--num_gpus and --num_cpu_replicas both given; replicas are "
                             "either GPUs or CPU devices")
    devices = _local_devices(kind, num_gpus, cpu_replicas)
    cluster = None
    num_replicas = len(devices)
    if kind == MULTI_WORKER:
        cli.check_positive_number("worker_timeout_secs", FLAGS.worker_timeout_secs)
        cluster = cluster_lib.read_cluster(os.environ.get("TF_CONFIG", ""))
        cluster_lib.check_address_free(cluster)
        num_replicas = len(devices) * len(cluster.tasks)
    for flag, size in sorted(batch_sizes.items()):
        if size % num_replicas:
            raise cli.InputError(
                "--%s=%d is the global batch, split evenly over the %d replicas (%s); make "
                "it a multiple of %d" % (flag, size, num_replicas, kind, num_replicas))
    return Distribution(kind, devices, num_replicas, cluster,
                        getattr(FLAGS, "worker_timeout_secs", 30.0))


def _local_devices(kind, num_gpus, cpu_replicas):
    """This machine's replica devices; makes them (CPU replicas) or narrows them (GPUs)."""
    present = gpu_count()
    if num_gpus and num_gpus > present and present:
        raise cli.InputError("--num_gpus=%d but TensorFlow sees %d GPU(s) on this machine; "
                             "pass --num_gpus=%d or fewer" % (num_gpus, present, present))
    if num_gpus and not present:
        raise cli.InputError(
            "--num_gpus=%d but TensorFlow sees no GPU on this machine (the CPU build of "
            "TensorFlow, or CUDA_VISIBLE_DEVICES hides them); install the GPU build "
            "(GPU=1 TF=2 scripts/setup.sh), or drop --num_gpus (--num_cpu_replicas=N "
            "checks a distributed run on the CPU)" % num_gpus)
    if cpu_replicas:
        if kind == MULTI_WORKER:
            raise cli.InputError("--num_cpu_replicas is for --distribution=mirrored on one "
                                 "machine; with multi_worker each worker's CPU is one "
                                 "replica")
        _make_cpu_devices(cpu_replicas)
        return ["/cpu:%d" % i for i in range(cpu_replicas)]
    if num_gpus:
        _use_first_gpus(num_gpus)
        return ["/gpu:%d" % i for i in range(num_gpus)]
    if present:
        return ["/gpu:%d" % i for i in range(present)]
    if kind == MIRRORED:
        raise cli.InputError(
            "--distribution=mirrored found no GPU on this machine; pass --num_cpu_replicas=N "
            "to check a distributed run on the CPU, or install the GPU build of TensorFlow "
            "(GPU=1 TF=2 scripts/setup.sh)")
    return ["/cpu:0"]


def pipeline_params(params, batch_size, input_context):
    """The input_fn params of this input pipeline (one per machine): its share of the
    global ``batch_size`` as ``batch_size``, and ``input_pipeline`` (index, count), by
    which the pipeline reads only its own share of the input (by file when there are at
    least as many files as pipelines, else by record), as TPU hosts do. Without an
    input_context: the global batch, one pipeline."""
    if input_context is None or input_context.num_input_pipelines <= 1:
        return dict(params, batch_size=batch_size)
    count = input_context.num_input_pipelines
    return dict(params, batch_size=batch_size // count,
                input_pipeline=(input_context.input_pipeline_id, count))


def split_for_replicas(dataset, input_context):
    """The per-replica batches this input pipeline feeds, from its own batches.

    Each element of ``dataset`` (a dict of tensors [G/M, ...], this pipeline's share of a
    global batch of G, M pipelines: see pipeline_params) is cut into as many consecutive
    slices as this machine has replicas, which the strategy hands to its devices in turn.
    So every step the replicas together see one global batch: the machines' shares.
    Without an input_context the dataset is returned as is.
    """
    if input_context is None:
        return dataset
    local = input_context.num_replicas_in_sync // input_context.num_input_pipelines
    return split_batches(dataset, local) if local > 1 else dataset


def split_batches(dataset, count):
    """Each batch of ``dataset`` (a dict of tensors [G, ...], G a multiple of ``count``)
    as ``count`` consecutive batches [G/count, ...] (gradient accumulation's
    micro-batches)."""

    def parts(batch):
        def cut(tensor):
            static = tensor.shape.as_list()
            shape = tf.shape(tensor)
            pieces = tf.reshape(tensor, tf.concat([[count, shape[0] // count], shape[1:]],
                                                  axis=0))
            pieces.set_shape([count, None if static[0] is None else static[0] // count]
                             + static[1:])
            return pieces
        return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(cut, batch))

    return dataset.flat_map(parts)
