"""Inference speed on the CPU: NSMC test reviews, seq 128, batch 64, side by side.

Two model shapes with random weights (the speed does not depend on them): BERT-mini
(vocab/bert_config_mini.json) on the 50,000 test reviews and the KR-BERT-MEDIUM (BERT-base)
shape (vocab/bert_config_medium.json) on the first 5,000, both with the KR-BERT-MEDIUM
vocabulary. Each setting runs as its own process; its wall time runs from the process
start to its exit (imports, graph building, tokenization and every prediction), docs/s
is reviews / wall time, and reviews per CPU-second (the process's user + system time)
say how much of the machine it used:

- ``predict.py`` from the checkpoint and from the SavedModel of ``run_classifier.py
  --do_export``;
- ``run_classifier.py --do_predict`` (Estimator; first run, then with the features
  cached for BERT-mini);
- transformers (benchmarks/hf_classifier.py: PyTorch CPU, 2 threads, inference_mode,
  BertTokenizerFast), batches in input order and sorted by length. It runs in the
  environment that has torch: this one, or HF_PYTHON (default .venv-tf2/bin/python).

Then: predict.py / transformers sorted (goal >= 1.5x), the precisions side by side -
predict.py from the checkpoint against transformers sorted, in float32 and in bfloat16
(predict.py --use_bfloat16; transformers under torch's bfloat16 autocast), each the median
docs/s of BENCH_RUNS runs (default 3), with their ratios (goals: >= 2x in float32, >= 1.3x
in bfloat16) and the share of labels bfloat16 keeps (goal >= 99.9%) - the share of
reviews whose label
predict.py and run_classifier.py agree on (goal >= 99.9%), where predict.py's time goes
(set-up, tokenizing, model, padding share from its last log line) and the model's time
per op class (matrix products, element-wise, ...) from a trace of a few batches.

    DATA_DIR=../shared/data python benchmarks/bench_inference.py
    BENCH_MODELS=mini BENCH_DOCS=5000 ...   one shape, at most 5,000 reviews (a quick look)
    BENCH_FRACTION=0.2 ...                  a fifth of the reviews of each shape
    BENCH_RUNS=1 ...                        one run per precision (a smoke run)
"""

import json
import os
import statistics
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import common
import modeling  # noqa: E402
from krbert.precision import bfloat16_kernel_copies  # noqa: E402
from krbert.classifier import model as classifier_model  # noqa: E402  (common: root on sys.path)
from krbert.classifier import tasks  # noqa: E402
from krbert.estimator import runtime  # noqa: E402
from krbert.tf_compat import TF_VERSION, tf  # noqa: E402

SEQ = 128
BATCH = 64
MODELS = {"mini": ("BERT-mini", "vocab/bert_config_mini.json", 50000),
          "base": ("BERT-base shape", "vocab/bert_config_medium.json", 5000)}
SUMMARY = re.compile(r"in ([\d.]+) s .* set-up ([\d.]+) s, tokenizing ([\d.]+) s, model "
                     r"([\d.]+) s; padding ([\d.]+)% of (\d+) positions")
OP_CLASSES = (("matrix products", ("MatMul",)), ("softmax", ("Softmax",)),
              ("casts", ("Cast",)),
              ("reductions", ("Mean", "Sum")),
              ("layout", ("Transpose", "Reshape", "Squeeze", "Slice", "Pack", "Concat")),
              ("embedding lookup", ("Gather", "OneHot")),
              ("bookkeeping", ("Const", "Variable", "Identity", "NoOp", "Shape", "_Arg",
                               "_Retval", "Assert", "LessEqual")))
"""Op types by class, matched by substring; the other ops count as element-wise."""
PROFILED_BATCHES = 3
PRECISIONS = ("float32", "bfloat16")
PRECISION_GOALS = {"float32": ">= 2", "bfloat16": ">= 1.3"}


def op_class_shares(config_file, seq_length, compute_dtype=tf.float32):
    """{"milliseconds": the model's time per batch [BATCH, seq_length] (untraced, the mean
    of PROFILED_BATCHES after a warm-up), "shares": {class: share of the traced op time}
    per OP_CLASSES class}, the encoder computing in ``compute_dtype``; the same keys as
    benchmarks/hf_classifier.py --profile_length prints. The graph is predict.py's from a
    checkpoint (bfloat16: the dense kernels' copies made once)."""
    graph = tf.Graph()
    getter = bfloat16_kernel_copies if compute_dtype == tf.bfloat16 else None
    with graph.as_default():
        with tf.variable_scope(tf.get_variable_scope(), custom_getter=getter):
            inputs, outputs = classifier_model.build_inference_graph(
                modeling.BertConfig.from_json_file(config_file), num_labels=2,
                compute_dtype=compute_dtype)
        init = [tf.global_variables_initializer(), tf.local_variables_initializer()]
    ids = np.random.RandomState(0).randint(5, 1000, size=(BATCH, seq_length)).astype(np.int32)
    feed = {inputs["input_ids"]: ids, inputs["input_mask"]: np.ones_like(ids),
            inputs["segment_ids"]: np.zeros_like(ids)}
    micros = {}
    with tf.Session(graph=graph, config=runtime.session_config()) as session:
        session.run(init[0])
        session.run(init[1])  # bfloat16: the kernels' copies, as predict.py makes them
        session.run(outputs["probabilities"], feed)
        started = time.time()
        for _ in range(PROFILED_BATCHES):
            session.run(outputs["probabilities"], feed)
        milliseconds = (time.time() - started) * 1000.0 / PROFILED_BATCHES
        for _ in range(PROFILED_BATCHES):
            metadata = tf.RunMetadata()
            session.run(outputs["probabilities"], feed, run_metadata=metadata,
                        options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE))
            for node in (n for d in metadata.step_stats.dev_stats for n in d.node_stats):
                label = node.timeline_label
                op = label.split(" = ")[1].split("(")[0] if " = " in label else node.node_name
                kind = next((name for name, ops in OP_CLASSES if any(o in op for o in ops)),
                            "element-wise")
                micros[kind] = micros.get(kind, 0) + node.op_end_rel_micros - \
                    node.op_start_rel_micros
    total = float(sum(micros.values()))
    return {"milliseconds": milliseconds,
            "shares": {kind: value / total for kind, value in micros.items()}}


def shares_text(profile):
    """"matrix products 91%, element-wise 5%, ...", largest first."""
    shares = profile["shares"]
    return ", ".join("%s %.0f%%" % (kind, 100 * shares[kind])
                     for kind in sorted(shares, key=shares.get, reverse=True))


def hf_python():
    """The interpreter with torch and transformers, or None."""
    for python in (os.environ.get("HF_PYTHON"), sys.executable,
                   os.path.join(common.ROOT, ".venv-tf2", "bin", "python")):
        if python and subprocess.call([python, "-c", "import torch, transformers"],
                                      stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) == 0:
            return python
    return None


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command, what):
    """Runs ``command``; returns ((wall seconds, CPU seconds), stdout, stderr); exits when
    it fails."""
    started, cpu = time.time(), children_cpu_seconds()
    done = subprocess.run(command, cwd=common.ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    seconds = (time.time() - started, children_cpu_seconds() - cpu)
    if done.returncode != 0:
        sys.exit("error: %s failed:\n%s" % (what, done.stderr[-3000:]))
    return seconds, done.stdout, done.stderr


def write_random_checkpoint(config_file, folder):
    """A classifier checkpoint (2 classes) with random weights, as run_classifier lays it out."""
    graph = tf.Graph()
    with graph.as_default():
        classifier_model.build_inference_graph(
            modeling.BertConfig.from_json_file(config_file), num_labels=2)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            return tf.train.Saver().save(session, os.path.join(folder, "model.ckpt"))


def write_inputs(data, docs, folder):
    """NSMC test's first ``docs`` rows as run_classifier data (test.tsv) and as predict.py
    input (one review per line); returns the text file."""
    common.copy_head(os.path.join(data, "nsmc", "test.tsv"), os.path.join(folder, "test.tsv"),
                     docs)
    split = tasks.get_processor("nsmc").read_split(folder, "test")
    texts = os.path.join(folder, "reviews.txt")
    with open(texts, "w", encoding="utf-8") as handle:
        handle.write("".join(e.text + "\n" for e in split.examples))
    return texts, len(split.examples)


def predicted_labels(tsv):
    """The label column of predict.py's output."""
    with open(tsv, encoding="utf-8") as handle:
        return np.array([int(line.split("\t")[1]) for line in list(handle)[1:]])


class ModelBench(object):
    """The settings of one model shape: its folder, inputs, checkpoint and flags."""

    def __init__(self, key, data, vocab, docs_limit, fraction, work):
        name, config, docs = MODELS[key]
        self.key = key
        self.config = os.path.join(common.ROOT, config)
        self.vocab = vocab
        self.folder = os.path.join(work, key)
        os.makedirs(self.folder)
        self.texts, self.docs = write_inputs(data, min(int(docs * fraction), docs_limit),
                                             self.folder)
        self.checkpoint = write_random_checkpoint(self.config, self.folder)
        self.model_flags = ["--bert_config_file=%s" % self.config, "--vocab_file=%s" % vocab,
                            "--do_lower_case=False", "--max_seq_length=%d" % SEQ]
        self.setting = "%s, %s reviews, seq %d, batch %d" % (name, "{:,}".format(self.docs),
                                                             SEQ, BATCH)

    def path(self, name):
        return os.path.join(self.folder, name)

    def row(self, what, value, unit, goal=""):
        common.row("inference", "%s: %s" % (self.setting, what), value, unit, goal)

    def speed_row(self, what, seconds, goal=""):
        """Prints docs/s, the wall time and docs per CPU-second from (wall, CPU) seconds;
        returns docs/s."""
        wall, cpu = seconds
        self.row(what, "%.0f (%.1f s; %.0f per CPU-s)" % (self.docs / wall, wall,
                                                          self.docs / cpu),
                 "docs/s (wall)", goal)
        return self.docs / wall

    def predict_py(self):
        """predict.py from the checkpoint and the SavedModel: (docs/s from the
        checkpoint, its wall seconds, its summary log match)."""
        subprocess.run([sys.executable, "run_classifier.py", "--task_name=NSMC", "--do_export",
                        "--output_dir=%s" % self.path("export_run"),
                        "--init_checkpoint=%s" % self.checkpoint,
                        "--export_dir=%s" % self.path("export")] + self.model_flags,
                       cwd=common.ROOT, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        found = {}
        for source, flags in (
                ("checkpoint", ["--init_checkpoint=%s" % self.checkpoint, "--task_name=NSMC"]
                 + self.model_flags),
                ("SavedModel", ["--saved_model=%s" % self.path("export")])):
            seconds, _, log = timed(
                [sys.executable, "predict.py", "--input_file=%s" % self.texts,
                 "--output_file=%s" % self.path("predict_%s.tsv" % source),
                 "--batch_size=%d" % BATCH] + flags, "predict.py")
            found[source] = (self.speed_row("predict.py from the %s, TF %s"
                                            % (source, TF_VERSION), seconds),
                             seconds[0], SUMMARY.search(log))
        return found["checkpoint"]

    def predict_runs(self, precision, runs):
        """predict.py from the checkpoint ``runs`` times in float32 or bfloat16: the
        median docs/s; the labels go to predict_<precision>.tsv."""
        flags = ["--use_bfloat16"] if precision == "bfloat16" else []
        speeds = []
        for _ in range(runs):
            (wall, _), _, _ = timed(
                [sys.executable, "predict.py", "--input_file=%s" % self.texts,
                 "--output_file=%s" % self.path("predict_%s.tsv" % precision),
                 "--init_checkpoint=%s" % self.checkpoint, "--task_name=NSMC",
                 "--batch_size=%d" % BATCH] + self.model_flags + flags, "predict.py")
            speeds.append(self.docs / wall)
        return statistics.median(speeds)

    def transformers_runs(self, python, precision, runs):
        """transformers sorted ``runs`` times, in float32 or under torch's bfloat16
        autocast: the median docs/s."""
        speeds = []
        for _ in range(runs):
            (wall, _), _, _ = timed(
                self.hf_command(python, "--input_file=%s" % self.texts,
                                "--output_file=%s" % self.path("hf_%s.txt" % precision),
                                "--order=sorted", "--max_seq_length=%d" % SEQ,
                                "--bfloat16=%s" % (precision == "bfloat16")),
                "hf_classifier.py")
            speeds.append(self.docs / wall)
        return statistics.median(speeds)

    def precisions(self, python, runs):
        """predict.py and transformers (sorted) side by side in float32 and bfloat16."""
        ours = {p: self.predict_runs(p, runs) for p in PRECISIONS}
        peers = {p: self.transformers_runs(python, p, runs) if python else None
                 for p in PRECISIONS}
        for precision in PRECISIONS:
            peer = peers[precision]
            self.row("%s, median of %d: predict.py / transformers sorted%s" % (
                precision, runs, " (torch bfloat16 autocast)" if precision == "bfloat16"
                else ""), "%.0f / %s" % (ours[precision], "%.0f" % peer if peer else "n/a"),
                "docs/s (wall)")
            if peer:
                self.row("%s: predict.py / transformers sorted" % precision,
                         ours[precision] / peer, "x", PRECISION_GOALS[precision])
        same = np.mean(predicted_labels(self.path("predict_float32.tsv")) ==
                       predicted_labels(self.path("predict_bfloat16.tsv")))
        self.row("same label, predict.py --use_bfloat16 vs float32", 100.0 * same, "%",
                 ">= 99.9")

    def run_classifier(self):
        runs = ["first run"] + (["features cached"] if self.key == "mini" else [])
        for run in runs:
            seconds, _, _ = timed(
                [sys.executable, "run_classifier.py", "--task_name=NSMC", "--do_predict",
                 "--data_dir=%s" % self.folder, "--output_dir=%s" % self.path("estimator"),
                 "--init_checkpoint=%s" % self.checkpoint,
                 "--predict_batch_size=%d" % BATCH] + self.model_flags, "run_classifier.py")
            self.speed_row("run_classifier.py --do_predict (%s), TF %s" % (run, TF_VERSION),
                           seconds)

    def transformers(self, python):
        """Both batch orders; returns the docs/s of the sorted one (None without torch)."""
        if python is None:
            self.row("transformers", "n/a", "", "torch and transformers not found "
                     "(set HF_PYTHON)")
            return None
        for order in ("input", "sorted"):
            seconds, out, _ = timed(
                self.hf_command(python, "--input_file=%s" % self.texts,
                                "--output_file=%s" % self.path("hf_%s.txt" % order),
                                "--order=%s" % order, "--max_seq_length=%d" % SEQ),
                "hf_classifier.py")
            timing = json.loads(out.strip().splitlines()[-1])
            speed = self.speed_row("transformers %s, torch %s, %s order (padding %.1f%%)" % (
                timing["transformers"], timing["torch"], order,
                100 * timing["padding_share"]), seconds)
        return speed

    def agreement(self):
        ours = predicted_labels(self.path("predict_checkpoint.tsv"))
        saved = predicted_labels(self.path("predict_SavedModel.tsv"))
        estimator = np.loadtxt(self.path("estimator/test_results.tsv"),
                               delimiter="\t").argmax(axis=1)
        self.row("same label, predict.py vs run_classifier.py (SavedModel vs checkpoint: "
                 "%.2f%%)" % (100.0 * np.mean(saved == ours)),
                 100.0 * np.mean(ours == estimator), "%", ">= 99.9")

    def breakdown(self, wall_seconds, summary, hf):
        """Where predict.py's wall time goes, from its last log line, and the model's
        time per batch and per op class at the mean padded length, beside transformers'."""
        elapsed, setup, tokenizing, model, padding, positions = [
            float(summary.group(i)) for i in range(1, 7)]
        self.row("predict.py from the checkpoint, where the wall time goes: imports / set-up "
                 "(graph, restore) / tokenizing / model / reading and writing; padding share "
                 "of the positions", "%.1f / %.1f / %.1f / %.1f / %.1f s; %.1f%%" % (
                     wall_seconds - elapsed, setup, tokenizing, model,
                     elapsed - setup - tokenizing - model, padding), "")
        length = int(round(positions / self.docs))
        for precision, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
            ours = op_class_shares(self.config, length, dtype)
            shape = "batch [%d, %d] (the mean padded length)" % (BATCH, length)
            self.row("%s model time per op class, %s, traced" % (precision, shape),
                     shares_text(ours), "")
            peer = self.transformers_profile(hf, length, precision)
            if peer is None:
                continue
            self.row("%s transformers model time per op class, %s, torch profiler" % (
                precision, shape), shares_text(peer), "")
            self.row("%s model time per batch, %s: predict.py's graph / transformers; their "
                     "matrix products alone (traced share x time)" % (precision, shape),
                     "%.0f / %.0f; %.0f / %.0f" % (
                         ours["milliseconds"], peer["milliseconds"],
                         ours["milliseconds"] * ours["shares"].get("matrix products", 0),
                         peer["milliseconds"] * peer["shares"].get("matrix products", 0)),
                     "ms")

    def hf_command(self, python, *flags):
        """benchmarks/hf_classifier.py on this shape and vocabulary, 2 threads, batch BATCH,
        with ``flags``."""
        return [python, "benchmarks/hf_classifier.py", "--bert_config_file=%s" % self.config,
                "--vocab_file=%s" % self.vocab, "--threads=2",
                "--batch_size=%d" % BATCH] + list(flags)

    def transformers_profile(self, python, length, precision):
        """hf_classifier.py --profile_length's JSON, or None without torch."""
        if python is None:
            return None
        _, out, _ = timed(
            self.hf_command(python, "--profile_length=%d" % length,
                            "--bfloat16=%s" % (precision == "bfloat16")),
            "hf_classifier.py --profile_length")
        return json.loads(out.strip().splitlines()[-1])


def bench_model(bench, hf, runs):
    speed, seconds, summary = bench.predict_py()
    bench.run_classifier()
    peer = bench.transformers(hf)
    if peer:
        bench.row("predict.py from the checkpoint / transformers sorted", speed / peer, "x",
                  ">= 1.5")
    bench.agreement()
    bench.precisions(hf, runs)
    if summary:
        bench.breakdown(seconds, summary, hf)


def main():
    data = common.data_dir()
    vocab = os.path.join(data, "krbert", "vocab_krmedium_20000.txt")
    docs_limit = int(os.environ.get("BENCH_DOCS", "50000"))
    fraction = float(os.environ.get("BENCH_FRACTION", "1"))
    keys = os.environ.get("BENCH_MODELS", "mini,base").split(",")
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    hf = hf_python()
    work = tempfile.mkdtemp(prefix="bench_inference_")
    try:
        for key in keys:
            load = os.getloadavg()[0]
            bench_model(ModelBench(key, data, vocab, docs_limit, fraction, work), hf, runs)
            common.row("inference", "%s: load average (1 min) before / after, %d cores"
                       % (MODELS[key][0], os.cpu_count()),
                       "%.1f / %.1f" % (load, os.getloadavg()[0]), "")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    main()
