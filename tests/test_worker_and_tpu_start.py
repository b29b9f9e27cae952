"""Training that cannot start says so in one line instead of waiting for ever or a deep
traceback: a multi_worker peer that never joins (krbert/estimator/cluster.py's PeerWatch,
--worker_start_timeout_secs), --use_tpu with no TPU to drive and a named Cloud TPU that
cannot be looked up (krbert/estimator/tpu_vm.py)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error

import pytest

from krbert import cli
from krbert.estimator import cluster as cluster_lib
from krbert.estimator import tpu_vm
from tiny_models import PREDS, SEQ, TINY, free_ports, write_records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_line_error(call, *args):
    with pytest.raises(cli.InputError) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def watch_of(workers, start_timeout=10.0, exit_fn=None, interval=5.0):
    cluster = cluster_lib.read_cluster(json.dumps({"cluster": {"worker": workers},
                                                   "task": {"type": "worker", "index": 0}}))
    return cluster_lib.PeerWatch(cluster, "/nonexistent", interval=interval,
                                 start_timeout=start_timeout, exit_fn=exit_fn)


# ---------------------------------------------------------------------------------------
# A worker that never joins


def test_a_peer_counts_as_not_joined_only_after_the_timeout_and_before_the_first_step():
    me, other = ("127.0.0.1:%d" % port for port in free_ports(2))
    watch = watch_of([me, other], start_timeout=10.0)
    peer = ("worker", 1, other)
    now = time.time()
    assert watch.not_joined(now, now - 5, {peer: False}) is None  # still within the wait
    assert watch.not_joined(now, now - 11, {peer: True}) is None  # it answers: joining
    assert watch.not_joined(now, now - 11, {peer: False}) == peer
    watch.after_run(None, None)  # a step completed: every task has joined
    assert watch.not_joined(now, now - 11, {peer: False}) is None


@pytest.mark.parametrize("host, reason", [("127.0.0.1", "nothing answers there"),
                                          ("no-such-host.invalid", "does not resolve")])
def test_a_peer_that_never_joins_is_named_in_one_line(capfd, host, reason):
    me, port = free_ports(2)
    codes = []
    watch = watch_of(["127.0.0.1:%d" % me, "%s:%d" % (host, port)], start_timeout=0.6,
                     interval=0.2, exit_fn=codes.append)
    watch.start()
    deadline = time.time() + 30
    while not codes and time.time() < deadline:
        time.sleep(0.1)
    watch.end(None)
    assert codes == [1]
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: worker 1 at %s:%d has not joined after " % (host, port))
    assert reason in lines[0] and '{"type": "worker", "index": 1}' in lines[0]
    assert "--worker_start_timeout_secs" in lines[0]


def test_a_peer_that_answers_is_waited_for():
    me = free_ports(1)[0]
    with socket.socket() as peer:
        peer.bind(("127.0.0.1", 0))
        peer.listen(1)
        codes = []
        watch = watch_of(["127.0.0.1:%d" % me, "127.0.0.1:%d" % peer.getsockname()[1]],
                         start_timeout=0.3, interval=0.1, exit_fn=codes.append)
        watch.start()
        time.sleep(1.5)
        watch.end(None)
    assert codes == []


def test_a_start_timeout_that_is_not_positive_is_one_line():
    class Flags(object):
        worker_start_timeout_secs = 0.0

    assert "--worker_start_timeout_secs" in one_line_error(
        cluster_lib.start_timeout_from_flags, Flags())


def test_multi_worker_with_a_worker_that_never_starts_stops_in_one_line(tmp_path):
    """Worker 0 of two is started, worker 1 never: worker 0 stops within its bound."""
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(TINY))
    ports = free_ports(2)
    workers = ["127.0.0.1:%d" % port for port in ports]
    env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                 "task": {"type": "worker", "index": 0}}))
    args = ["--bert_config_file=%s" % config,
            "--input_file=%s" % write_records(tmp_path / "train.tfrecord", 32),
            "--output_dir=%s" % (tmp_path / "out"), "--do_train",
            "--max_seq_length=%d" % SEQ, "--max_predictions_per_seq=%d" % PREDS,
            "--train_batch_size=8", "--num_train_steps=3", "--num_warmup_steps=1",
            "--distribution=multi_worker", "--worker_start_timeout_secs=5"]
    done = subprocess.run([sys.executable, os.path.join(ROOT, "run_pretraining.py")] + args,
                          cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert done.returncode == 1, done.stdout[-3000:]
    assert len(errors) == 1 and "Traceback" not in done.stdout, done.stdout[-3000:]
    assert errors[0].startswith("error: worker 1 at %s has not joined after " % workers[1])


# ---------------------------------------------------------------------------------------
# --use_tpu with no TPU, or a named TPU that cannot be looked up


def test_use_tpu_needs_a_tpu_name_off_a_tpu_vm():
    message = one_line_error(tpu_vm.require_tpu, None, None, [])
    assert message.startswith("--use_tpu without --tpu_name or --master")
    assert "scripts/pretrain_tpu.sh" in message and "drop --use_tpu" in message
    assert tpu_vm.require_tpu("krbert-tpu", None, []) == "krbert-tpu"
    assert tpu_vm.require_tpu(None, "grpc://10.0.0.2:8470", []) is None


def raising(error):
    def resolver(*args, **kwargs):
        raise error
    return resolver


@pytest.mark.parametrize("error, words", [
    (ImportError("googleapiclient and oauth2client must be installed"),
     ["google-api-python-client", "--tpu_name=local"]),
    (urllib.error.URLError("[Errno -2] Name or service not known"),
     ["could not look this Cloud TPU up (URLError:", "--tpu_zone", "--tpu_name=local"]),
    (ValueError("Could not lookup TPU\nmore detail"), ["(ValueError: Could not lookup TPU)"]),
])
def test_a_tpu_that_cannot_be_looked_up_is_one_line(error, words):
    message = one_line_error(tpu_vm.cluster_resolver, "some-name", None, None, raising(error))
    assert message.startswith("--tpu_name=some-name: ")
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("extra", [[], ["--tpu_name=some-name"]])
def test_run_pretraining_use_tpu_off_a_tpu_is_one_line_before_any_work(tmp_path, extra):
    if tpu_vm.tpu_devices():
        pytest.skip("this machine has a TPU")
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    args = ["--bert_config_file=%s" % config,
            "--input_file=%s" % write_records(tmp_path / "train.tfrecord", 8),
            "--output_dir=%s" % out, "--do_train", "--max_seq_length=%d" % SEQ,
            "--max_predictions_per_seq=%d" % PREDS, "--train_batch_size=8",
            "--num_train_steps=1", "--use_tpu"] + extra
    done = subprocess.run([sys.executable, os.path.join(ROOT, "run_pretraining.py")] + args,
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300)
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert done.returncode == 1, done.stdout[-3000:]
    assert len(errors) == 1 and "Traceback" not in done.stdout, done.stdout[-3000:]
    assert errors[0].startswith("error: --tpu_name=some-name: " if extra
                                else "error: --use_tpu without --tpu_name"), errors[0]
    assert not out.exists()  # refused before any work
