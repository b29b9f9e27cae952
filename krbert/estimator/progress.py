"""The training log a run can be followed by: one line per --log_every_n_steps updates,

    step 51 of 2,000,000 (0.0%): loss = 7.31, ..., examples/s = 41.2, ETA 11d 06:12:40

with the ETA from a moving average of the time per update (the global step: with gradient
accumulation one update takes several session runs; a skipped float16 update is made
again). The same average goes to TensorBoard as ``steps_per_sec``. On the TPU a session
run makes --iterations_per_loop updates; the host logs the same line after each (the
scalars then travel through the host_call: the line has the progress and the ETA).
"""

import time

from krbert.tf_compat import tf

SMOOTHING = 0.9
"""Weight of the past in the moving average of the time per update."""


def format_duration(seconds):
    """'1d 02:03:04', '02:03:04' (under a day)."""
    seconds = int(round(max(seconds, 0.0)))
    days, rest = divmod(seconds, 86400)
    text = "%02d:%02d:%02d" % (rest // 3600, rest % 3600 // 60, rest % 60)
    return "%dd %s" % (days, text) if days else text


def progress_line(step, total_steps, values, seconds_per_step=None, examples_per_step=None):
    """The log line of update ``step`` (1-based) of ``total_steps``; ``values`` {name:
    float} sorted by name; the speed and ETA when ``seconds_per_step`` is known."""
    parts = ["%s = %.4g" % (name, values[name]) for name in sorted(values)]
    if seconds_per_step:
        if examples_per_step:
            parts.append("examples/s = %.1f" % (examples_per_step / seconds_per_step))
        parts.append("ETA %s" % format_duration(seconds_per_step * (total_steps - step)))
    return "step {:,} of {:,} ({:.1f}%): {}".format(
        step, total_steps, 100.0 * step / max(total_steps, 1), ", ".join(parts))


class MovingAverage(object):
    """An exponential moving average; None before the first value."""

    def __init__(self, smoothing=SMOOTHING):
        self.smoothing = smoothing
        self.value = None

    def add(self, value):
        if self.value is None:
            self.value = value
        else:
            self.value = self.smoothing * self.value + (1.0 - self.smoothing) * value
        return self.value


class ProgressHook(tf.train.SessionRunHook):
    """Logs progress_line every ``every_n_steps`` updates (steps 1, 1 + N, 1 + 2N, ...)
    and writes ``steps_per_sec`` to ``summary_dir`` (None: no summary).

    Args:
      scalars: {name: scalar tensor} fetched for the logged updates ({} on the TPU).
      total_steps: --num_train_steps.
      examples_per_step: the global batch of an update (for examples/s), or None.
    """

    def __init__(self, scalars, total_steps, every_n_steps, examples_per_step=None,
                 summary_dir=None):
        self._scalars = dict(scalars)
        self._total = int(total_steps)
        self._every = int(every_n_steps)
        self._examples = examples_per_step
        self._summary_dir = summary_dir
        self._average = MovingAverage()
        self._global_step = None
        self._step = self._time = None
        self._measured = False

    def begin(self):
        self._global_step = tf.train.get_global_step()

    def after_create_session(self, session, coord):
        self._step, self._time = int(session.run(self._global_step)), time.time()

    def _due(self, step):
        return (step - 1) % self._every == 0

    def before_run(self, run_context):
        if self._scalars and self._due(self._step + 1):
            return tf.train.SessionRunArgs(self._scalars)
        return None

    def after_run(self, run_context, run_values):
        step = int(run_context.session.run(self._global_step))
        if step == self._step:
            return  # a micro-batch of gradient accumulation, or a skipped update
        now = time.time()
        if self._measured:  # not the first update: it holds the graph's warm-up
            self._average.add((now - self._time) / (step - self._step))
        self._measured = True
        previous, self._step, self._time = self._step, step, now
        if not any(self._due(s) for s in range(previous + 1, step + 1)):
            return
        seconds = self._average.value
        tf.logging.info(progress_line(step, self._total, run_values.results or {}, seconds,
                                      self._examples))
        if self._summary_dir and seconds:
            summary = tf.Summary(value=[tf.Summary.Value(tag="steps_per_sec",
                                                         simple_value=1.0 / seconds)])
            tf.summary.FileWriterCache.get(self._summary_dir).add_summary(summary, step)
