"""Several machines training one model: the cluster TF_CONFIG describes, checked, and a
watch on the other workers.

TF_CONFIG (the environment variable tf.distribute reads) names every task of the job and
which one this process is, for instance on the second of two machines:

    {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
     "task": {"type": "worker", "index": 1}}

Jobs ``worker`` and optionally ``chief`` (one task) are accepted. The chief (else worker 0)
writes the checkpoints and summaries. ``read_cluster`` turns every mistake into one line.

When a worker dies, the others would wait for it forever inside their next all-reduce:
``PeerWatch`` notices that a peer's port has closed while this process is stuck in a
training step, says so in one line and ends the process, so that the whole job stops and
can be restarted from the last checkpoint. Before the first step it bounds the wait for
the others to join (--worker_start_timeout_secs): a worker that never starts, or a host
name that does not resolve, is named in one line with its address instead of a job that
waits for ever after "Graph was finalized".
"""

import collections
import errno
import json
import os
import socket
import sys
import threading
import time

from krbert import cli
from krbert.tf_compat import tf

JOBS = ("chief", "worker")
START_TIMEOUT_SECS = 600.0
"""Default of --worker_start_timeout_secs: time for every machine to start its worker."""


def define_cluster_flags(flags):
    """Defines --worker_start_timeout_secs (read by start_timeout_from_flags)."""
    flags.DEFINE_float(
        "worker_start_timeout_secs", START_TIMEOUT_SECS,
        "multi_worker: how long this worker waits for every other task of TF_CONFIG to "
        "answer before the first step; then it stops, naming the task that never did.")


def start_timeout_from_flags(FLAGS):  # pylint: disable=invalid-name
    """The checked --worker_start_timeout_secs (InputError, one line, unless above 0)."""
    cli.check_positive_number("worker_start_timeout_secs", FLAGS.worker_start_timeout_secs)
    return FLAGS.worker_start_timeout_secs

Cluster = collections.namedtuple("Cluster", [
    "tasks",      # [(job, index, "host:port")] in the order chief, then workers
    "job",        # this task's job: "chief" or "worker"
    "index",      # this task's index in its job
    "address",    # this task's "host:port"
])
"""The cluster of TF_CONFIG and the task this process is."""


def _fail(message):
    raise cli.InputError("TF_CONFIG %s; set it on every machine to e.g. "
                         "'{\"cluster\": {\"worker\": [\"host1:2222\", \"host2:2222\"]}, "
                         "\"task\": {\"type\": \"worker\", \"index\": 0}}' (index 1 on the "
                         "second machine)" % message)


def _split_address(address):
    """(host, port) of "host:port"; None when it is not one."""
    if not isinstance(address, str) or ":" not in address:
        return None
    host, port = address.rsplit(":", 1)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def read_cluster(text):
    """The Cluster of a TF_CONFIG value; InputError (one line) naming what is wrong.

    Checks: valid JSON with "cluster" and "task"; jobs only chief (at most one task) and
    worker; every address "host:port"; no address twice; the task's type a job of the
    cluster and its index one of that job's tasks.
    """
    if not text or not text.strip():
        _fail("is not set, and --distribution=multi_worker reads the cluster from it")
    try:
        config = json.loads(text)
    except ValueError as e:
        _fail("is not valid JSON (%s)" % e)
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        _fail("has no \"cluster\" object")
    cluster = config["cluster"]
    tasks = []
    for job in sorted(cluster, key=lambda name: (name != "chief", name)):
        if job not in JOBS:
            _fail("has a \"%s\" job; only \"worker\" (and one \"chief\") train here" % job)
        addresses = cluster[job]
        if not isinstance(addresses, list) or not addresses:
            _fail("job \"%s\" must be a list of \"host:port\" addresses" % job)
        if job == "chief" and len(addresses) != 1:
            _fail("job \"chief\" must have exactly one address (it has %d)" % len(addresses))
        for index, address in enumerate(addresses):
            if _split_address(address) is None:
                _fail("%s %d: %r is not \"host:port\"" % (job, index, address))
            tasks.append((job, index, address))
    if not any(job == "worker" for job, _, _ in tasks):
        _fail("has no \"worker\" job")
    seen = {}
    for job, index, address in tasks:
        if address in seen:
            _fail("names %s twice (%s %d and %s %d); give every task its own host:port"
                  % (address, seen[address][0], seen[address][1], job, index))
        seen[address] = (job, index)
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        _fail("has no \"task\" {\"type\": ..., \"index\": ...} saying which task this "
              "process is")
    job, index = task["type"], task["index"]
    if job not in cluster:
        _fail("task type \"%s\" is not a job of the cluster (%s)" % (job, ", ".join(sorted(
            cluster))))
    if not isinstance(index, int) or not 0 <= index < len(cluster[job]):
        _fail("task index %r is not one of job \"%s\"'s %d tasks (0 to %d)"
              % (index, job, len(cluster[job]), len(cluster[job]) - 1))
    return Cluster(tasks=tasks, job=job, index=index, address=cluster[job][index])


def is_chief(cluster):
    """True for the task that writes checkpoints: the chief, else worker 0."""
    has_chief = any(job == "chief" for job, _, _ in cluster.tasks)
    return cluster.job == "chief" or (not has_chief and cluster.index == 0)


def check_address_free(cluster):
    """InputError when this task's port is already taken on this machine (a worker of an
    earlier run still alive, or two tasks given one port)."""
    port = _split_address(cluster.address)[1]
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("", port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise cli.InputError(
                "TF_CONFIG: this task (%s %d) listens on %s, but port %d is in use on this "
                "machine; stop the process holding it (a worker of an earlier run?) or "
                "give this task another port in TF_CONFIG on every machine"
                % (cluster.job, cluster.index, cluster.address, port))
    finally:
        probe.close()


def host_resolves(address):
    """False when the host of "host:port" has no address (DNS or /etc/hosts)."""
    host, port = _split_address(address)
    try:
        socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        return True
    except (OSError, UnicodeError):
        return False


def peer_answers(address, timeout=2.0):
    """True when something accepts TCP connections at "host:port"."""
    host, port = _split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class PeerWatch(tf.train.SessionRunHook):
    """Ends this process when another task stops while this one waits for it.

    After the first step (all tasks have joined), a thread checks every ``interval``
    seconds that every other task's port still accepts connections. When one has not for
    ``grace`` seconds and this task is waiting for it - its training step has lasted
    ``grace`` seconds (TensorFlow 1.15 waits in the all-reduce for ever), or the session
    was recreated after a failed step and no step has completed since (TensorFlow 2.15
    fails the all-reduce and retries in a loop) - it writes one line on stderr ("error:
    worker 1 at host:port stopped ...") and exits with status 1: the process cannot be
    interrupted otherwise. A task that finished first is not mistaken for a dead one:
    saving the last checkpoint is not a step.

    Before that, ``start()`` (called before training) bounds the wait for the others to
    join: when no step has completed ``start_timeout`` seconds after it, and a task's port
    does not answer, it writes one line naming that task and its address ("has not
    joined", and whether its host name resolves) and exits with status 1.
    """

    def __init__(self, cluster, output_dir, interval=5.0, grace=30.0, exit_fn=None,
                 start_timeout=START_TIMEOUT_SECS):
        self._peers = [(job, index, address) for job, index, address in cluster.tasks
                       if address != cluster.address]
        self._output_dir = output_dir
        self._interval = interval
        self._grace = grace
        self._exit = exit_fn or os._exit
        self._step_started = None
        self._sessions = 0
        self._recovering = False
        self._armed = False
        self._stopped = threading.Event()
        self._first_step = threading.Event()
        self._start_timeout = start_timeout
        self._thread = None
        self._start_thread = None

    def start(self):
        """Starts the bounded wait for every other task to join (a daemon thread)."""
        if self._peers and self._start_thread is None:
            self._start_thread = threading.Thread(target=self._watch_start,
                                                  name="peer-start-watch")
            self._start_thread.daemon = True
            self._start_thread.start()

    def after_create_session(self, session, coord):
        self._sessions += 1
        # A second session: the last one failed (a task lost?) and was recreated.
        self._recovering = self._sessions > 1

    def before_run(self, run_context):
        self._step_started = time.time()

    def after_run(self, run_context, run_values):
        self._step_started = None
        self._recovering = False
        self._first_step.set()
        if not self._armed and self._peers:
            self._armed = True
            self._thread = threading.Thread(target=self._watch, name="peer-watch")
            self._thread.daemon = True
            self._thread.start()

    def end(self, session):
        self._stopped.set()
        self._first_step.set()

    def not_joined(self, now, started, answering):
        """The first task that has not joined at time ``now``, or None: none is before the
        first step and ``start_timeout`` after ``started``.

        Args:
          now, started: time.time() values.
          answering: {peer: True when its port answers now}.
        """
        if self._first_step.is_set() or now - started < self._start_timeout:
            return None
        missing = sorted(peer for peer in self._peers if not answering.get(peer))
        return missing[0] if missing else None

    def _watch_start(self):
        started = time.time()
        interval = max(0.1, min(self._interval, self._start_timeout / 3.0))
        while not self._first_step.wait(interval):
            if self._stopped.is_set():
                return
            answering = {peer: peer_answers(peer[2]) for peer in self._peers}
            peer = self.not_joined(time.time(), started, answering)
            if peer is not None and not self._first_step.is_set():
                self._stopped.set()
                self._report_not_joined(peer, time.time() - started)
                return

    def waiting_for(self, now, missing_since):
        """The peer this task waits for in vain at time ``now``, or None.

        Args:
          now: time.time().
          missing_since: {peer: time its port stopped answering}.
        """
        started = self._step_started
        stuck = started is not None and now - started >= self._grace
        if not (stuck or self._recovering):
            return None
        gone = [peer for peer, since in missing_since.items() if now - since >= self._grace]
        return sorted(gone)[0] if gone else None

    def _watch(self):
        missing_since = {}
        while not self._stopped.wait(self._interval):
            now = time.time()
            for peer in self._peers:
                if peer_answers(peer[2]):
                    missing_since.pop(peer, None)
                else:
                    missing_since.setdefault(peer, now)
            peer = self.waiting_for(now, missing_since)
            if peer is not None and not self._stopped.is_set():
                self._stopped.set()
                self._report(peer, now - missing_since[peer])

    def _report_not_joined(self, peer, waited):
        job, index, address = peer
        where = ("its host name does not resolve" if not host_resolves(address)
                 else "nothing answers there")
        sys.stdout.flush()
        sys.stderr.write(
            "error: %s %d at %s has not joined after %.0f s (%s); start it with the same "
            "command and TF_CONFIG task {\"type\": \"%s\", \"index\": %d} on that "
            "machine, or correct its address in TF_CONFIG on every machine "
            "(--worker_start_timeout_secs sets this wait)\n"
            % (job, index, address, waited, where, job, index))
        sys.stderr.flush()
        self._exit(1)

    def _report(self, peer, missing):
        job, index, address = peer
        checkpoint = tf.train.latest_checkpoint(self._output_dir)
        resume = ("from %s" % os.path.basename(checkpoint) if checkpoint
                  else "from the start (no checkpoint yet)")
        sys.stdout.flush()
        sys.stderr.write(
            "error: %s %d at %s stopped answering %.0f s ago and training cannot go on "
            "without it; the job stops. Start every worker again with the same command: "
            "training resumes %s in %s\n" % (job, index, address, missing, resume,
                                             self._output_dir))
        sys.stderr.flush()
        self._exit(1)
