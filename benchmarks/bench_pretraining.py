"""Pretraining speed on the CPU: BERT-mini, batch 64, seq 128, 20 predictions; and the
model card's shape, BERT-medium, batch 16, seq 128, 20 predictions.

    python benchmarks/bench_pretraining.py                    every setting, 100 steps
    python benchmarks/bench_pretraining.py --steps 40 --settings default,xla_jit
    python benchmarks/bench_pretraining.py --settings medium_float32,medium_bfloat16,\
        medium_original --medium_steps 14

The medium rows (vocab/bert_config_medium.json) come from one run each, in one process
per row: ours in float32, ours with --use_bfloat16, and the original release's
run_pretraining.py (ORIGINAL_BERT, default /work/ref/bert; run under TensorFlow 2.15
through benchmarks/original_bert.py, so that row needs TF=2). Each gives examples/s after
the first step and the wall-clock seconds of the whole training call. Beside them:
bfloat16 with --xla_jit, and the matrix products of one medium step alone in float32 and
in bfloat16 (the ceilings those settings approach).

Writes synthetic TFRecords (random ids, vocab 20,000) to a temporary folder and trains
vocab/bert_config_mini.json through run_pretraining's model_fn and input_fn, one child
process per setting (environment variables such as TF_ENABLE_ONEDNN_OPTS are read when
TensorFlow is imported). Speed is examples/s over steps 20..70 (after the warm-up),
for the TensorFlow version running this file. Every setting sees the same data and
seed (so the same initial weights); the second row of a setting is the largest
difference of its per-step loss from the default setting's over all steps (float noise
is ~1e-5; bfloat16 differs more), the third the mean difference over the last 50 steps.
Under TensorFlow 1.15 a graph-level seed gives each random op a seed from the number of
ops created before it, so the "original pipeline" setting (a different number of input
ops) draws other dropout masks there: its loss change is dropout noise, not arithmetic.
TensorFlow 2 counts only the seeded ops, and the change is float noise.
The "matmul ceiling" setting times the step's matrix products alone
(benchmarks/matmul_ceiling.py): the examples/s the step would reach if everything
else were free.
On a busy machine compare the examples per CPU-second (all threads' user + system time)
rather than the wall-clock rate; the row shows the 1-minute load average.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import common

SEQ, PREDS, BATCH, VOCAB, SEED = 128, 20, 64, 20000, 12345
WINDOW = (20, 70)
CONFIG = os.path.join(common.ROOT, "vocab", "bert_config_mini.json")

# name -> (environment, options of one run). "original pipeline" parses one record at
# a time (map_and_batch over parse_single_example, no prefetch) like the original code.
SETTINGS = [
    ("default", {}, {}),
    ("original pipeline", {}, {"pipeline": "original"}),
    ("oneDNN off", {"TF_ENABLE_ONEDNN_OPTS": "0"}, {}),
    ("oneDNN on", {"TF_ENABLE_ONEDNN_OPTS": "1"}, {}),
    ("xla_jit", {}, {"xla_jit": True}),
    ("one-hot embeddings", {}, {"one_hot": True}),
    ("threads intra 2 inter 1", {}, {"intra": 2, "inter": 1}),
    ("threads intra 1 inter 2", {}, {"intra": 1, "inter": 2}),
    ("bfloat16", {}, {"bfloat16": True}),
    ("bfloat16 + xla_jit", {}, {"bfloat16": True, "xla_jit": True}),
    ("matmul ceiling", {}, {"ceiling": True}),
    ("medium float32", {}, {"medium": True}),
    ("medium bfloat16", {}, {"medium": True, "bfloat16": True}),
    ("medium original", {}, {"medium": True, "original": True}),
    ("medium bfloat16 + xla_jit", {}, {"medium": True, "bfloat16": True, "xla_jit": True}),
    ("medium matmul ceiling float32", {}, {"medium": True, "ceiling": True}),
    ("medium matmul ceiling bfloat16", {}, {"medium": True, "ceiling": True,
                                            "bfloat16": True}),
]
MEDIUM_CONFIG = os.path.join(common.ROOT, "vocab", "bert_config_medium.json")
MEDIUM_BATCH = 16
ORIGINAL_BERT = os.environ.get("ORIGINAL_BERT", "/work/ref/bert")
KEYS = {name.replace(" ", "_").replace("+", "").replace("__", "_").lower(): name
        for name, _, _ in SETTINGS}


def write_data(path, num_records):
    """Random pretraining records of the benchmark's shape (ids in [5, VOCAB))."""
    import numpy as np

    from krbert.tf_compat import tf

    rng = np.random.RandomState(SEED)

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(num_records):
            length = rng.randint(SEQ // 2, SEQ + 1)
            ids = np.zeros(SEQ, np.int64)
            ids[:length] = rng.randint(5, VOCAB, size=length)
            positions = np.sort(rng.choice(np.arange(1, length), PREDS, replace=False))
            mask = [1] * length + [0] * (SEQ - length)
            segments = [0] * (length // 2) + [1] * (SEQ - length // 2)
            features = {
                "input_ids": ints(ids), "input_mask": ints(mask),
                "segment_ids": ints(segments), "masked_lm_positions": ints(positions),
                "masked_lm_ids": ints(ids[positions]),
                "masked_lm_weights": tf.train.Feature(
                    float_list=tf.train.FloatList(value=[1.0] * PREDS)),
                "next_sentence_labels": ints([rng.randint(2)]),
            }
            example = tf.train.Example(features=tf.train.Features(feature=features))
            writer.write(example.SerializeToString())


def original_input_fn(path, spec):
    """The original pipeline: map_and_batch of parse_single_example, no prefetch."""
    from krbert.estimator import tf_example
    from krbert.tf_compat import tf

    def decode_record(record):
        return tf_example.decode_record(record, spec)

    def input_fn(params):
        files = tf.data.Dataset.from_tensor_slices(tf.constant([path]))
        files = files.repeat().shuffle(1, seed=SEED)
        d = files.apply(tf.data.experimental.parallel_interleave(
            tf.data.TFRecordDataset, cycle_length=1, sloppy=True))
        d = d.shuffle(100, seed=SEED)
        return d.apply(tf.data.experimental.map_and_batch(
            decode_record, batch_size=params["batch_size"], num_parallel_batches=4,
            drop_remainder=True))

    return input_fn


def run_one(options, data, out, steps):
    """Trains ``steps`` steps; returns examples/s over WINDOW (medium: after the first
    step), the seconds of the training call and the per-step losses."""
    import modeling
    import run_pretraining
    from krbert.estimator import runtime
    from krbert.pretraining import records as pretraining_records
    from krbert.tf_compat import tf

    class Probe(tf.train.SessionRunHook):
        """Records the loss of every step and the time at both ends of WINDOW."""

        def __init__(self):
            self.losses, self.times, self.cpu, self.step = [], {}, {}, 0

        def before_run(self, run_context):
            return tf.train.SessionRunArgs("total_loss:0")

        def after_run(self, run_context, run_values):
            self.step += 1
            self.losses.append(float(run_values.results))
            if self.step in window:
                self.times[self.step] = time.time()
                self.cpu[self.step] = sum(os.times()[:2])  # user + system, all threads

    medium = options.get("medium")
    window = (1, steps) if medium else WINDOW
    batch = MEDIUM_BATCH if medium else BATCH
    tf.logging.set_verbosity(tf.logging.ERROR)
    if options.get("xla_jit"):
        run_pretraining.enable_cpu_xla()
    config = modeling.BertConfig.from_json_file(MEDIUM_CONFIG if medium else CONFIG)
    run_config = runtime.make_run_config(
        out, use_tpu=False, save_checkpoints_steps=10 ** 6, log_step_count_steps=10 ** 6,
        config_proto=runtime.session_config(
            options.get("xla_jit", False), options.get("intra", 0), options.get("inter", 0)))
    run_config = run_config.replace(tf_random_seed=SEED)
    model_fn = run_pretraining.model_fn_builder(
        config, None, 1e-4, num_train_steps=10000, num_warmup_steps=100, use_tpu=False,
        use_one_hot_embeddings=options.get("one_hot", False),
        compute_dtype=tf.bfloat16 if options.get("bfloat16") else tf.float32,
        options=run_pretraining.TrainingOptions(
            1e-4, 10000, 100, output_dir=out, log_every_n_steps=10 ** 6,
            train_batch_size=batch))
    estimator = runtime.make_estimator(model_fn, run_config, False, batch)
    if options.get("pipeline") == "original":
        input_fn = original_input_fn(data, pretraining_records.feature_spec(SEQ, PREDS))
    else:
        input_fn = run_pretraining.input_fn_builder([data], SEQ, PREDS, True, seed=SEED)
    probe = Probe()
    start = time.time()
    estimator.train(input_fn, hooks=[probe], max_steps=steps)
    examples = (window[1] - window[0]) * batch
    return {"examples_per_s": examples / (probe.times[window[1]] - probe.times[window[0]]),
            "examples_per_cpu_s": examples / (probe.cpu[window[1]] - probe.cpu[window[0]]),
            "seconds": time.time() - start, "load": os.getloadavg()[0],
            "losses": probe.losses}


def run_original(data, out, steps):
    """The original release's run_pretraining.py at the medium shape (original_bert.py)."""
    probe = out + ".json"
    flags = {"bert_config_file": MEDIUM_CONFIG, "input_file": data, "output_dir": out,
             "do_train": True, "train_batch_size": MEDIUM_BATCH, "max_seq_length": SEQ,
             "max_predictions_per_seq": PREDS, "num_train_steps": steps,
             "num_warmup_steps": 100, "learning_rate": 1e-4,
             "save_checkpoints_steps": 10 ** 6, "iterations_per_loop": 10 ** 6}
    start = time.time()
    subprocess.run([sys.executable, os.path.join(common.ROOT, "benchmarks", "original_bert.py"),
                    ORIGINAL_BERT, probe, "--"] + ["--%s=%s" % item for item in flags.items()],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.time() - start
    with open(probe) as handle:
        times = json.load(handle)["times"]
    return {"examples_per_s": (len(times) - 1) * MEDIUM_BATCH / (times[-1] - times[0]),
            "seconds": seconds, "load": os.getloadavg()[0]}


def run_ceiling(options):
    """The matmul-only step speed (see matmul_ceiling.py) for the benchmark's shapes."""
    import matmul_ceiling
    import modeling
    from krbert.estimator import runtime

    medium = options.get("medium")
    batch = MEDIUM_BATCH if medium else BATCH
    config = modeling.BertConfig.from_json_file(MEDIUM_CONFIG if medium else CONFIG)
    seconds, flops = matmul_ceiling.step_matmul_seconds(
        config, batch, SEQ, PREDS, runtime.session_config(
            False, options.get("intra", 0), options.get("inter", 0)),
        bfloat16=options.get("bfloat16", False))
    return {"examples_per_s": batch / seconds, "gflop_per_step": flops / 1e9,
            "gflop_per_s": flops / 1e9 / seconds, "load": os.getloadavg()[0]}


def print_ceiling(setting, result, medium):
    common.row("pretraining bert-%s" % ("medium" if medium else "mini"),
               "%s: matrix products of one step alone, %.0f GFLOP "
               "at %.0f GFLOP/s (load %.1f)" % (setting, result["gflop_per_step"],
                                                result["gflop_per_s"], result["load"]),
               result["examples_per_s"], "examples/s", "upper bound")


def print_medium(setting, result, steps):
    """The two rows of a medium-shape setting: examples/s after step 1, total seconds."""
    benchmark = "pretraining bert-medium"
    common.row(benchmark, "%s, batch 16, seq 128, steps 2-%d (load %.1f)" % (
        setting, steps, result["load"]), result["examples_per_s"], "examples/s")
    common.row(benchmark, "%s: the training call, %d steps" % (setting, steps),
               result["seconds"], "s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="steps per setting (> 70)")
    parser.add_argument("--settings", default=",".join(KEYS),
                        help="comma-separated, of: " + ", ".join(KEYS))
    parser.add_argument("--medium_steps", type=int, default=14,
                        help="steps of each medium-shape setting (>= 2)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = json.loads(args.child)
        options = child["options"]
        steps = args.medium_steps if options.get("medium") else args.steps
        if options.get("ceiling"):
            result = run_ceiling(options)
        elif options.get("original"):
            result = run_original(child["data"], child["out"], steps)
        else:
            result = run_one(options, child["data"], child["out"], steps)
        print("RESULT " + json.dumps(result))
        return
    if args.steps <= WINDOW[1]:
        sys.exit("error: --steps must exceed %d" % WINDOW[1])
    if args.medium_steps < 2:
        sys.exit("error: --medium_steps must be at least 2")
    unknown = [k for k in args.settings.split(",") if k not in KEYS]
    if unknown:
        sys.exit("error: unknown setting %s; choose from %s" % (unknown, ", ".join(KEYS)))
    chosen = [s for s in SETTINGS if s[0] in [KEYS[k] for k in args.settings.split(",")]]

    from krbert.tf_compat import TF_VERSION
    tmp = tempfile.mkdtemp(prefix="bench_pretraining_")
    try:
        data = os.path.join(tmp, "data.tfrecord")
        write_data(data, 2048)
        baseline = None
        for name, env, options in chosen:
            out = os.path.join(tmp, name.replace(" ", "_"))
            child = json.dumps({"options": options, "data": data, "out": out})
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--steps", str(args.steps),
                 "--medium_steps", str(args.medium_steps), "--child", child],
                env=dict(os.environ, **env),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            setting = "TF %s, %s" % (TF_VERSION, name)
            if proc.returncode or not lines:
                common.row("pretraining bert-%s" % ("medium" if options.get("medium")
                                                    else "mini"), setting, "failed: " +
                           (proc.stderr.strip().splitlines() or ["?"])[-1], "")
                continue
            result = json.loads(lines[-1][len("RESULT "):])
            if options.get("ceiling"):
                print_ceiling(setting, result, options.get("medium"))
                continue
            if options.get("medium"):
                print_medium(setting, result, args.medium_steps)
                continue
            common.row("pretraining bert-mini", "%s, batch 64, seq 128 (load %.1f)" %
                       (setting, result["load"]), result["examples_per_s"], "examples/s",
                       ">= 60")
            common.row("pretraining bert-mini", "%s: per CPU-second (less load-sensitive)" %
                       setting, result["examples_per_cpu_s"], "examples/CPU-s")
            if name == "default":
                baseline = result["losses"]
            elif baseline:
                diffs = [abs(a - b) for a, b in zip(result["losses"], baseline)]
                diff = max(diffs)
                goal = "float noise"
                if "bfloat16" in name:
                    goal = ""
                elif options.get("pipeline") == "original" and not TF_VERSION.startswith("2"):
                    goal = "other dropout masks on TF 1.15"
                common.row("pretraining bert-mini", "%s: max loss change vs default, steps "
                           "1-%d" % (setting, len(baseline)), diff, "loss", goal)
                last = diffs[-50:]
                common.row("pretraining bert-mini", "%s: mean loss change over the last %d "
                           "steps (default's mean loss there %.4f)" % (
                               setting, len(last), sum(baseline[-50:]) / len(last)),
                           sum(last) / len(last), "loss")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
