"""Prints the results table of a scripts/reproduce_small.sh run and writes its MLM curve.

    python scripts/reproduce_summary.py runs/reproduce_small

Reads the files the stages wrote: pretrain/ (event files, eval_results.txt),
finetune/<run>/eval_results.txt and stage_seconds.tsv. Writes mlm_curve.tsv (step,
training-batch masked-LM accuracy and loss, one row per logged step) into the folder.
"""

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


def show(value):
    """A metric as "83.85", or "n/a" for a run not made yet."""
    return "n/a" if value is None else "%.2f" % value


def metric(work, run, key):
    path = os.path.join(work, "finetune", run, "eval_results.txt")
    if not os.path.exists(path):
        return None
    return 100.0 * float(read_key_values(path)[key])


def main(work):
    stage_rows = stage_seconds(work)
    seconds = dict(stage_rows)
    pretrain = read_key_values(os.path.join(work, "pretrain", "eval_results.txt"))
    curve = write_mlm_curve(work)
    print("| pretraining (BERT-mini, seq 64, batch 64) | value |\n|---|---|")
    print("| steps | %s |" % pretrain["global_step"])
    pretraining_seconds = sum(float(value) for name, value in stage_rows
                              if name == "pretraining")
    print("| wall time (all pretraining stages) | %.0f min |" % (pretraining_seconds / 60))
    print("| masked-LM accuracy, eval after training | %.4f |"
          % float(pretrain["masked_lm_accuracy"]))
    print("| next-sentence accuracy, eval after training | %.4f |"
          % float(pretrain["next_sentence_accuracy"]))
    print("| training masked-LM accuracy by step | %s |" % curve_points(curve, 1000))
    print()
    print("| fine-tuning | metric | pretrained | from scratch | difference | "
          "wall time (pretrained / scratch) |")
    print("|---|---|---|---|---|---|")
    for run, what, split, key, name in RUNS:
        what = what % data_rows(work, run, "train")
        name = name % data_rows(work, run, split)
        pretrained, scratch = (metric(work, "%s_%s" % (run, init), key)
                               for init in ("pretrained", "scratch"))
        difference = ("n/a" if pretrained is None or scratch is None
                      else "%+.2f" % (pretrained - scratch))
        times = " / ".join("%s s" % seconds.get("%s_%s" % (run, init), "n/a")
                           for init in ("pretrained", "scratch"))
        print("| %s | %s | %s | %s | %s | %s |" % (what, name, show(pretrained), show(scratch),
                                                  difference, times))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/reproduce_summary.py WORK_DIR")
    main(sys.argv[1])
