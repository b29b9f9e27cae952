"""Prints the results table of a scripts/reproduce_small.sh run and writes its MLM curve.

    python scripts/reproduce_summary.py runs/reproduce_small

Reads the files the stages wrote: pretrain/ (event files, eval_results.txt),
finetune/<task>_<init>_seed<N>/eval_results.txt (one folder per seed) and
stage_seconds.tsv. Each fine-tuning row gives, per initialisation, the mean and the sample
standard deviation over the seeds (and their number), the difference of the means and the
mean wall time of one run. Writes mlm_curve.tsv (step, training-batch masked-LM accuracy and
loss, one row per logged step) into the folder.
"""

import glob
import math
import os
import sys

from demo_summary import read_key_values, scalar_series_by_tag, stage_seconds

RUNS = [  # (task folder, what it is, eval split, metric key, metric name)
    ("nsmc_10", "NSMC, first %s rows of train, 3 epochs", "test", "eval_accuracy",
     "test accuracy (%s)"),
    ("nsmc_100", "NSMC, all of train (%s rows), 1 epoch", "test", "eval_accuracy",
     "test accuracy (%s)"),
    ("hate", "HATE, train (%s rows), 3 epochs", "dev", "eval_macro_f1", "dev macro-F1 (%s)"),
]


def write_mlm_curve(work):
    """mlm_curve.tsv from the pretraining event files; returns its rows."""
    series = scalar_series_by_tag(os.path.join(work, "pretrain"),
                                  ["masked_lm_accuracy", "masked_lm_loss"])
    accuracy, loss = dict(series["masked_lm_accuracy"]), dict(series["masked_lm_loss"])
    rows = [(step, accuracy[step], loss.get(step, float("nan"))) for step in sorted(accuracy)]
    with open(os.path.join(work, "mlm_curve.tsv"), "w", encoding="utf-8") as f:
        f.write("step\tmasked_lm_accuracy\tmasked_lm_loss\n")
        for step, acc, value in rows:
            f.write("%d\t%.4f\t%.4f\n" % (step, acc, value))
    return rows


def curve_points(rows, every):
    """The curve's first row at or after each multiple of ``every`` steps, and its last row."""
    picked, target = [], every
    for row in rows:
        if row[0] >= target or row is rows[-1]:
            picked.append(row)
            target = (row[0] // every + 1) * every
    return ", ".join("%d: %.3f" % (step, acc) for step, acc, _ in picked)


def data_rows(work, task, split):
    """Rows (without the header) of tasks/<task>/<split>.tsv, as "13,000"; "?" if missing."""
    path = os.path.join(work, "tasks", task, split + ".tsv")
    if not os.path.exists(path):
        return "?"
    with open(path, encoding="utf-8") as f:
        return "{:,}".format(sum(1 for _ in f) - 1)


def seed_runs(work, run):
    """{seed: folder name} of the fine-tuning folders <run>_seed<N> (a folder named <run>
    alone, from a run without seeds, counts as seed "-")."""
    runs = {}
    for path in glob.glob(os.path.join(work, "finetune", run + "_seed*")):
        if os.path.isdir(path):
            runs[os.path.basename(path)[len(run) + len("_seed"):]] = os.path.basename(path)
    if os.path.isdir(os.path.join(work, "finetune", run)):
        runs["-"] = run
    return runs


def metric(work, name, key):
    path = os.path.join(work, "finetune", name, "eval_results.txt")
    if not os.path.exists(path):
        return None
    return 100.0 * float(read_key_values(path)[key])


def mean_and_sd(values):
    """(mean, sample standard deviation or None for one value) of a non-empty list."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def show(values):
    """"83.85 ± 0.20 (3)" (mean ± standard deviation (seeds)), "83.85 (1)", or "n/a"."""
    if not values:
        return "n/a"
    mean, sd = mean_and_sd(values)
    spread = "" if sd is None else " ± %.2f" % sd
    return "%.2f%s (%d)" % (mean, spread, len(values))


def finetune_row(work, run, key, seconds):
    """(pretrained, scratch, difference, wall time) cells of one task's row."""
    values, times = {}, {}
    for init in ("pretrained", "scratch"):
        names = sorted(seed_runs(work, "%s_%s" % (run, init)).values())
        results = [(name, metric(work, name, key)) for name in names]
        values[init] = [value for _, value in results if value is not None]
        runs = [float(seconds[name]) for name, value in results
                if value is not None and name in seconds]
        times[init] = "%.0f s" % (sum(runs) / len(runs)) if runs else "n/a"
    if values["pretrained"] and values["scratch"]:
        difference = "%+.2f" % (mean_and_sd(values["pretrained"])[0] -
                                mean_and_sd(values["scratch"])[0])
    else:
        difference = "n/a"
    return (show(values["pretrained"]), show(values["scratch"]), difference,
            "%s / %s" % (times["pretrained"], times["scratch"]))


def main(work):
    stage_rows = stage_seconds(work)
    seconds = dict(stage_rows)
    pretrain = read_key_values(os.path.join(work, "pretrain", "eval_results.txt"))
    curve = write_mlm_curve(work)
    print("| pretraining (BERT-mini, seq 64, batch 64) | value |\n|---|---|")
    print("| steps | %s |" % pretrain["global_step"])
    pretraining_seconds = [float(value) for name, value in stage_rows if name == "pretraining"]
    print("| wall time (all pretraining stages) | %s |"
          % ("%.0f min" % (sum(pretraining_seconds) / 60) if pretraining_seconds
             else "n/a (no finished pretraining stage)"))
    print("| masked-LM accuracy, eval after training | %.4f |"
          % float(pretrain["masked_lm_accuracy"]))
    print("| next-sentence accuracy, eval after training | %.4f |"
          % float(pretrain["next_sentence_accuracy"]))
    print("| training masked-LM accuracy by step | %s |" % curve_points(curve, 1000))
    print()
    print("| fine-tuning | metric | pretrained: mean ± sd (seeds) | from scratch | "
          "difference of the means | wall time of one run (pretrained / scratch) |")
    print("|---|---|---|---|---|---|")
    for run, what, split, key, name in RUNS:
        what = what % data_rows(work, run, "train")
        name = name % data_rows(work, run, split)
        print("| %s | %s | %s | %s | %s | %s |"
              % ((what, name) + finetune_row(work, run, key, seconds)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/reproduce_summary.py WORK_DIR")
    main(sys.argv[1])
