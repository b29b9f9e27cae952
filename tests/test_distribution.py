"""tf.distribute pieces in-process: the optimizer across replicas, the loss scale, the
slice of each global batch a replica reads, the flag and TF_CONFIG checks, the watch on
the other workers, and --tpu_name=local.

The replicas are two logical CPU devices (ConfigProto device_count), as
--num_cpu_replicas=2 makes them; tests/test_distributed_training.py runs the scripts.
"""

import socket
import time
import types

import numpy as np
import pytest

import optimization
from krbert import cli
from krbert.estimator import cluster as cluster_lib
from krbert.estimator import distribution, tpu_vm
from krbert.tf_compat import IS_TF2, tf
from tiny_models import free_ports

REPLICAS = 2
FEATURES = np.random.RandomState(0).randn(16, 5).astype(np.float32)
# Targets far from the start: the gradient's global norm is well above 1, so the clip acts
# and must see the whole batch's gradient.
TARGETS = 10.0 * np.random.RandomState(1).randn(16).astype(np.float32)


def linear_step(features, targets, poison=None, loss_scale=None, warmup=2):
    """Builds one train op of a linear model (kernel [5, 1], bias [1]), mean squared error,
    10 steps of learning rate 0.01 with ``warmup`` warmup steps."""
    kernel = tf.get_variable("dense/kernel", initializer=np.linspace(
        -1, 1, 5).astype(np.float32).reshape(5, 1))
    bias = tf.get_variable("dense/bias", initializer=np.zeros(1, np.float32))
    predictions = tf.squeeze(tf.matmul(features, kernel), 1) + bias
    loss = optimization.mean_share(tf.square(predictions - targets))
    if poison is not None:
        loss = loss * poison
    return optimization.create_optimizer(loss, 0.01, 10, warmup, False, loss_scale=loss_scale)


def cpu_session(replicas):
    return tf.Session(config=tf.ConfigProto(device_count={"CPU": replicas}))


def run_one_device(steps):
    with tf.Graph().as_default():
        train_op = linear_step(tf.constant(FEATURES), tf.constant(TARGETS))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(steps):
                sess.run(train_op)
            return {v.op.name: sess.run(v) for v in tf.global_variables()}


def mirrored(replica_fn):
    """(strategy, the grouped train op of replica_fn(replica index tensor))."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:%d" % i for i in range(REPLICAS)])
    with strategy.scope():
        tf.train.get_or_create_global_step()

        def per_replica():
            context = tf.distribute.get_replica_context()
            return replica_fn(context.replica_id_in_sync_group)

        train_op = strategy.group(strategy.extended.call_for_each_replica(per_replica))
    return strategy, train_op


def replica_values(sess, strategy, variable):
    """The values of a variable's copies, one per replica."""
    return [sess.run(v) for v in strategy.experimental_local_results(variable)]


def test_two_replicas_sum_gradients_before_the_clip_and_match_one_device():
    steps = 4
    expected = run_one_device(steps)
    half = len(FEATURES) // REPLICAS
    with tf.Graph().as_default():
        strategy, train_op = mirrored(lambda replica: linear_step(
            tf.gather(tf.constant(FEATURES.reshape(REPLICAS, half, 5)), replica),
            tf.gather(tf.constant(TARGETS.reshape(REPLICAS, half)), replica)))
        with cpu_session(REPLICAS) as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(steps):
                sess.run(train_op)
            for variable in tf.global_variables():
                copies = replica_values(sess, strategy, variable)
                assert len(copies) == REPLICAS
                for copy in copies[1:]:  # every replica made the same update
                    np.testing.assert_array_equal(copy, copies[0], err_msg=variable.op.name)
                want = expected[variable.op.name]
                scale = max(np.max(np.abs(want)), 1e-30)
                assert np.max(np.abs(copies[0] - want)) <= 1e-5 * scale, variable.op.name
    assert expected["global_step"] == steps  # once per step, not once per replica
    assert sorted(expected) == ["dense/bias", "dense/bias/adam_m", "dense/bias/adam_v",
                                "dense/kernel", "dense/kernel/adam_m", "dense/kernel/adam_v",
                                "global_step"]


@pytest.mark.parametrize("replicas", [1, REPLICAS])
def test_loss_scale_skips_non_finite_steps_and_moves_the_scale(replicas):
    # The scale starts at 8 and doubles after 2 finite steps in a row. An inf or a nan
    # multiplying one replica's loss makes the gradients non-finite: the step is skipped.
    poisons = [[1, 1], [1, np.inf], [1, 1], [1, 1], [np.nan, 1], [1, 1]]
    if replicas == 1:  # one device reads the first replica's poison
        poisons = [[1, 1], [np.inf, 1], [1, 1], [1, 1], [np.nan, 1], [1, 1]]
    want = [(8.0, 1, True), (4.0, 0, False), (4.0, 1, True), (8.0, 0, True),
            (4.0, 0, False), (4.0, 1, True)]  # (scale, good steps, weights moved)
    half = len(FEATURES) // REPLICAS
    with tf.Graph().as_default():
        poison = tf.placeholder(tf.float32, [REPLICAS])

        def replica_fn(replica):
            scale = optimization.DynamicLossScale(initial_scale=8.0, growth_interval=2)
            return linear_step(
                tf.gather(tf.constant(FEATURES.reshape(REPLICAS, half, 5)), replica),
                tf.gather(tf.constant(TARGETS.reshape(REPLICAS, half)), replica),
                tf.gather(poison, replica), scale, warmup=0)

        strategy = None
        if replicas == 1:
            train_op = replica_fn(tf.constant(0))
        else:
            strategy, train_op = mirrored(replica_fn)
        variables = {v.op.name: v for v in tf.global_variables()}
        with cpu_session(replicas) as sess:
            sess.run(tf.global_variables_initializer())
            before = sess.run(variables)
            updates = 0
            for step, (values, (scale, good, moved)) in enumerate(zip(poisons, want), 1):
                sess.run(train_op, {poison: values})
                after = sess.run(variables)
                for name, value in after.items():
                    assert np.all(np.isfinite(value)), (step, name)
                updates += moved
                assert after["global_step"] == updates  # a skipped step does not count
                assert after["loss_scale"] == scale, step
                assert after["loss_scale_good_steps"] == good, step
                for name in ("dense/kernel", "dense/kernel/adam_m", "dense/bias/adam_v"):
                    changed = not np.array_equal(after[name], before[name])
                    assert changed == moved, (step, name)
                if strategy is not None:
                    for name in ("dense/kernel", "loss_scale"):
                        copies = replica_values(sess, strategy, variables[name])
                        np.testing.assert_array_equal(copies[0], copies[1])
                before = after


def test_split_for_replicas_gives_each_replica_its_slice_of_its_machines_batches():
    ids = np.arange(32, dtype=np.int32).reshape(16, 2)
    # The second of two machines, two replicas each: global batches of 8, this machine's
    # share 4 (pipeline_params), its replicas 2 and 3 of 4 get 2 each.
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=4)
    params = distribution.pipeline_params({"other": 1}, 8, context)
    assert params == {"other": 1, "batch_size": 4, "input_pipeline": (1, 2)}
    assert distribution.pipeline_params({}, 8, None) == {"batch_size": 8}
    with tf.Graph().as_default():
        batches = tf.data.Dataset.from_tensor_slices({"ids": ids}).batch(4, drop_remainder=True)
        dataset = distribution.split_for_replicas(batches, context)
        element = tf.data.make_one_shot_iterator(dataset).get_next()
        assert element["ids"].shape.as_list() == [2, 2]
        with tf.Session() as sess:
            got = [sess.run(element)["ids"][:, 0].tolist() for _ in range(4)]
    assert got == [[0, 2], [4, 6], [8, 10], [12, 14]]
    assert distribution.split_for_replicas(batches, None) is batches


# ---------------------------------------------------------------------------------------
# Flags and TF_CONFIG


def fake_flags(**values):
    settings = dict(distribution=None, num_gpus=None, num_cpu_replicas=0, use_tpu=False,
                    use_fp16=False, use_bfloat16=False, worker_timeout_secs=30.0)
    settings.update(values)
    return types.SimpleNamespace(**settings)


def one_line_error(call, *args):
    with pytest.raises(cli.InputError) as raised:
        call(*args)
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("values, words", [
    ({"distribution": "mirrored", "use_tpu": True}, ["--distribution=mirrored", "--use_tpu"]),
    ({"num_cpu_replicas": 2, "use_tpu": True}, ["--num_cpu_replicas", "--use_tpu"]),
    ({"distribution": "ring"}, ["--distribution=ring", "mirrored", "multi_worker"]),
    ({"num_gpus": 64}, ["--num_gpus=64", "GPU"]),
    ({"num_gpus": 0}, ["--num_gpus=0"]),
    ({"distribution": "mirrored"}, ["no GPU", "--num_cpu_replicas"]),
    ({"num_gpus": 1, "num_cpu_replicas": 2}, ["--num_gpus", "--num_cpu_replicas"]),
])
def test_distribution_flag_mistakes_are_one_line(values, words):
    if values.get("num_gpus") == 64 or values.get("distribution") == "mirrored":
        if distribution.gpu_count() >= 64 or (distribution.gpu_count() and
                                              "num_gpus" not in values):
            pytest.skip("this machine has GPUs")
    message = one_line_error(distribution.from_flags, fake_flags(**values),
                             {"train_batch_size": 16})
    for word in words:
        assert word in message, message


def test_no_distribution_flag_means_one_device():
    assert distribution.from_flags(fake_flags(), {"train_batch_size": 15}) is None


def test_fp16_without_a_gpu_is_one_line(monkeypatch):
    monkeypatch.delenv(distribution.FP16_ON_CPU_VARIABLE, raising=False)
    if distribution.gpu_count():
        pytest.skip("this machine has a GPU")
    message = one_line_error(distribution.check_precision, fake_flags(use_fp16=True))
    assert "--use_fp16 needs a GPU" in message
    assert "TPU" in one_line_error(distribution.check_precision,
                                   fake_flags(use_fp16=True, use_tpu=True))
    assert distribution.check_precision(fake_flags()) == tf.float32
    assert distribution.check_precision(fake_flags(use_bfloat16=True)) == tf.bfloat16


def tf_config(workers, task_type="worker", index=0, chief=None):
    cluster = {"worker": workers}
    if chief:
        cluster["chief"] = [chief]
    return '{"cluster": %s, "task": {"type": "%s", "index": %d}}' % (
        str(cluster).replace("'", '"'), task_type, index)


@pytest.mark.parametrize("text, words", [
    ("", ["TF_CONFIG is not set"]),
    ("{cluster: 1}", ["not valid JSON"]),
    ('{"task": {"type": "worker", "index": 0}}', ["no \"cluster\""]),
    (tf_config(["127.0.0.1:2222", "127.0.0.1:2222"]), ["names 127.0.0.1:2222 twice",
                                                       "worker 0 and worker 1"]),
    (tf_config(["127.0.0.1:2222"], chief="127.0.0.1:2222"), ["twice"]),
    (tf_config(["127.0.0.1:2222", "localhost"]), ["worker 1", "'localhost'", "host:port"]),
    (tf_config(["127.0.0.1:2222"], index=1), ["task index 1", "0 to 0"]),
    (tf_config(["127.0.0.1:2222"], task_type="ps"), ["task type \"ps\""]),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", '
     '"index": 0}}', ["\"ps\" job"]),
    ('{"cluster": {"worker": ["a:1"]}}', ["no \"task\""]),
])
def test_tf_config_mistakes_are_one_line(text, words):
    message = one_line_error(cluster_lib.read_cluster, text)
    assert message.startswith("TF_CONFIG ")
    for word in words:
        assert word in message, message


def test_tf_config_names_the_chief_and_the_tasks():
    cluster = cluster_lib.read_cluster(tf_config(["h1:1", "h2:2"], index=1))
    assert cluster.tasks == [("worker", 0, "h1:1"), ("worker", 1, "h2:2")]
    assert (cluster.job, cluster.index, cluster.address) == ("worker", 1, "h2:2")
    assert not cluster_lib.is_chief(cluster)
    assert cluster_lib.is_chief(cluster_lib.read_cluster(tf_config(["h1:1", "h2:2"])))
    with_chief = cluster_lib.read_cluster(tf_config(["h1:1"], chief="h0:9"))
    assert with_chief.tasks[0] == ("chief", 0, "h0:9")
    assert not cluster_lib.is_chief(with_chief)


def test_multi_worker_checks_the_batch_against_every_worker(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config(["127.0.0.1:%d" % port
                                               for port in free_ports(3)]))
    if distribution.gpu_count():
        pytest.skip("this machine has GPUs")
    flags = fake_flags(distribution="multi_worker")
    message = one_line_error(distribution.from_flags, flags, {"train_batch_size": 16})
    assert "--train_batch_size=16 is the global batch" in message
    assert "3 replicas" in message
    plan = distribution.from_flags(flags, {"train_batch_size": 15})
    assert plan.num_replicas == 3 and plan.devices == ["/cpu:0"] and plan.is_chief


def test_a_port_in_use_is_one_line():
    with socket.socket() as holder:
        holder.bind(("", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        cluster = cluster_lib.read_cluster(tf_config(["127.0.0.1:%d" % port]))
        message = one_line_error(cluster_lib.check_address_free, cluster)
    assert "port %d is in use" % port in message


# ---------------------------------------------------------------------------------------
# The watch on the other workers


def watch_of(grace=10.0, exit_fn=None, interval=5.0):
    port = free_ports(1)[0]  # nothing listens there: a dead worker
    cluster = cluster_lib.read_cluster(tf_config(["127.0.0.1:%d" % free_ports(1)[0],
                                                  "127.0.0.1:%d" % port]))
    return cluster_lib.PeerWatch(cluster, "/nonexistent", interval=interval, grace=grace,
                                 exit_fn=exit_fn), ("worker", 1, "127.0.0.1:%d" % port)


def test_peer_watch_fires_only_when_waiting_for_a_lost_worker():
    watch, peer = watch_of(grace=10.0)
    now = time.time()
    lost_long_ago = {peer: now - 60}
    watch.after_create_session(None, None)
    assert watch.waiting_for(now, lost_long_ago) is None  # between steps: saving, done
    watch._step_started = now - 5  # pylint: disable=protected-access
    assert watch.waiting_for(now, lost_long_ago) is None  # a step, not yet long
    watch._step_started = now - 11  # pylint: disable=protected-access
    assert watch.waiting_for(now, lost_long_ago) == peer
    assert watch.waiting_for(now, {peer: now - 3}) is None  # lost only just now
    watch._step_started = None  # pylint: disable=protected-access
    watch.after_create_session(None, None)  # the failed step's session was recreated
    assert watch.waiting_for(now, lost_long_ago) == peer
    watch.after_run(None, None)  # a step completed after all
    watch.end(None)
    assert watch.waiting_for(now, lost_long_ago) is None


def test_peer_watch_reports_a_lost_worker_in_one_line_and_exits(capfd):
    codes = []
    watch, peer = watch_of(grace=0.6, interval=0.2, exit_fn=codes.append)
    watch.after_create_session(None, None)
    watch.before_run(None)
    watch.after_run(None, None)  # the first step: the watch starts
    watch.before_run(None)  # the next step waits for worker 1, which is gone
    deadline = time.time() + 20
    while not codes and time.time() < deadline:
        time.sleep(0.1)
    watch.end(None)
    assert codes == [1]
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: worker 1 at %s stopped answering" % peer[2])
    assert "Start every worker again with the same command" in lines[0]


# ---------------------------------------------------------------------------------------
# --tpu_name=local


def test_tpu_name_local_off_a_tpu_vm_is_one_line():
    message = one_line_error(tpu_vm.resolve_tpu_name, "local", None, [])
    assert "--tpu_name=local" in message and "no TPU" in message


def test_tpu_names_resolve_to_the_local_tpu_only_on_a_tpu_vm():
    assert tpu_vm.resolve_tpu_name("krbert-node", None, []) == "krbert-node"
    assert tpu_vm.resolve_tpu_name(None, None, []) is None
    assert tpu_vm.resolve_tpu_name(None, "grpc://10.0.0.2:8470", ["/dev/accel0"]) is None
    if IS_TF2:
        assert tpu_vm.resolve_tpu_name(None, None, ["/dev/accel0"]) == "local"
        assert tpu_vm.resolve_tpu_name("LOCAL", None, ["/dev/vfio/0"]) == "local"
    else:
        assert "TensorFlow 2.15" in one_line_error(tpu_vm.resolve_tpu_name, "local", None,
                                                   ["/dev/accel0"])


def test_tpu_devices_are_the_chip_device_files(tmp_path):
    (tmp_path / "accel0").write_text("")
    (tmp_path / "accel1").write_text("")
    (tmp_path / "null").write_text("")
    found = tpu_vm.tpu_devices([str(tmp_path / "accel[0-9]*")])
    assert [p.rsplit("/", 1)[1] for p in found] == ["accel0", "accel1"]


class FakeHostContext(object):
    """The TPUContext TPUEstimator hands each host's input_fn on a pod slice."""

    def __init__(self, host, hosts):
        self.host, self.hosts = host, hosts

    def current_input_fn_deployment(self):
        return ("/job:worker/task:%d/device:CPU:0" % self.host, self.host, self.hosts, 8)


def read_one_pass(paths, params, batches, shuffle_buffer=100):
    """The input_ids rows of ``batches`` training batches of run_pretraining's input_fn."""
    import run_pretraining
    with tf.Graph().as_default():
        dataset = run_pretraining.input_fn_builder(paths, 16, 3, True, seed=1,
                                                   shuffle_buffer=shuffle_buffer)(params)
        batch = tf.data.make_one_shot_iterator(dataset).get_next()
        with tf.Session() as sess:
            return [tuple(row) for _ in range(batches)
                    for row in sess.run(batch)["input_ids"].tolist()]


@pytest.mark.parametrize("files", [1, 4])
def test_pod_slice_hosts_read_different_pretraining_examples(tmp_path, files):
    import run_pretraining
    from tiny_models import write_records
    paths = [write_records(tmp_path / ("%d.tfrecord" % i), 32, seed=i) for i in range(files)]
    seen = [set(read_one_pass(paths, {"batch_size": 8, "context": FakeHostContext(host, 2)},
                              4)) for host in range(2)]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert run_pretraining.input_host({}) == (0, 1)


@pytest.mark.parametrize("files", [1, 4])
def test_two_workers_over_one_pass_see_every_example_exactly_once(tmp_path, files):
    """By record (one file) or by file (four): each worker reads its share only. (The
    order of the files is shuffled over the epochs, so with several files a worker may
    start its second epoch before the first ends: there the shares are compared as sets.)"""
    from test_run_pretraining import write_records
    paths = [write_records(tmp_path / ("%d.tfrecord" % i), 32, seed=i) for i in range(files)]
    every = read_one_pass(paths, {"batch_size": 32}, files, shuffle_buffer=1)
    everything = set(read_one_pass(paths, {"batch_size": 32}, 4 * files))
    assert len(everything) == 32 * files  # distinct records
    context = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                          num_replicas_in_sync=2) for worker in range(2)]
    # A global batch of 16: each worker reads 8 a step; one pass is 2 * files steps.
    seen = [read_one_pass(paths, distribution.pipeline_params({}, 16, context[worker]),
                          2 * files, shuffle_buffer=1) for worker in range(2)]
    if files == 1:
        assert sorted(seen[0] + seen[1]) == sorted(every)
        assert seen[0] == every[0::2] and seen[1] == every[1::2]
    longer = [set(read_one_pass(paths, distribution.pipeline_params({}, 16, context[worker]),
                                8 * files)) for worker in range(2)]
    assert not longer[0] & longer[1] and longer[0] | longer[1] == everything
