"""Prints the results of a scripts/continue_experiment.sh run as Markdown tables.

    python scripts/continue_summary.py runs/continue_experiment

Reads what the stages wrote: mlm/<model>/eval_results.txt (masked-LM accuracy on the
held-out news comments), finetune/hate_<model>_seed<N>/eval_results.txt (HATE dev
macro-F1, one folder per seed), grown/extend_report.json and stage_seconds.tsv. Per model:
the mean and the sample standard deviation over the seeds (their number in brackets), each
seed's figure, the difference to the base model's mean and whether it lies inside the
seeds' spread (within one standard deviation of either model).
"""

import glob
import json
import os
import sys

from demo_summary import read_key_values, stage_seconds
from reproduce_summary import mean_and_sd, show

MODELS = [  # (folder name, what it is, vocabulary of its MLM eval)
    ("scratch", "random weights (no pretraining)", "-"),
    ("base", "no continuation (NSMC reviews only)", "NSMC vocabulary"),
    ("cont", "continuation on the news comments", "NSMC vocabulary"),
    ("cont_new", "continuation + new tokens", "grown vocabulary"),
]


def hate_scores(work, model):
    """[(seed, dev macro-F1 in %)] of the finished runs of a model, by seed."""
    scores = []
    for path in glob.glob(os.path.join(work, "finetune", "hate_%s_seed*" % model,
                                       "eval_results.txt")):
        seed = os.path.basename(os.path.dirname(path)).rsplit("_seed", 1)[1]
        scores.append((int(seed), 100.0 * float(read_key_values(path)["eval_macro_f1"])))
    return sorted(scores)


def mlm_accuracy(work, model):
    path = os.path.join(work, "mlm", model, "eval_results.txt")
    if not os.path.exists(path):
        return "n/a"
    values = read_key_values(path)
    return "%.4f (loss %.3f)" % (float(values["masked_lm_accuracy"]),
                                 float(values["masked_lm_loss"]))


def spread_note(base, other):
    """How a model's mean compares with the base's, in the seeds' spread."""
    if len(base) < 2 or len(other) < 2:
        return "n/a"
    (m0, s0), (m1, s1) = mean_and_sd(base), mean_and_sd(other)
    inside = abs(m1 - m0) <= max(s0, s1)
    return "%+.2f (%s one sd)" % (m1 - m0, "inside" if inside else "outside")


def minutes(seconds, names):
    total = sum(float(seconds[name]) for name in names if name in seconds)
    return "%.1f min" % (total / 60.0) if total else "n/a"


def main(work):
    seconds = dict(stage_seconds(work))
    scores = {model: hate_scores(work, model) for model, _, _ in MODELS}
    base = [value for _, value in scores["base"]]
    print("| model | masked-LM accuracy, held-out news comments | HATE dev macro-F1, "
          "mean ± sd (seeds) | per seed | difference to no continuation |")
    print("|---|---|---|---|---|")
    for model, what, vocab in MODELS:
        values = [value for _, value in scores[model]]
        per_seed = ", ".join("%d: %.2f" % pair for pair in scores[model]) or "n/a"
        difference = "-" if model == "base" else spread_note(base, values)
        mlm = "-" if model == "scratch" else "%s, %s" % (mlm_accuracy(work, model), vocab)
        print("| %s | %s | %s | %s | %s |" % (what, mlm, show(values), per_seed, difference))
    report_path = os.path.join(work, "grown", "extend_report.json")
    if os.path.exists(report_path):
        with open(report_path, encoding="utf-8") as handle:
            report = json.load(handle)
        print()
        print("New tokens: %d (%s)." % (len(report["tokens"]), report["how_chosen"]))
        before, after = report.get("eval_before"), report.get("eval_after")
        if before and after:
            print("Held-out news comments: [UNK] rate %.4f%% -> %.4f%%, tokens per line "
                  "%.2f -> %.2f." % (100 * before["unk_rate"], 100 * after["unk_rate"],
                                     before["tokens_per_line"], after["tokens_per_line"]))
        print("Most frequent: %s." % ", ".join(
            "%s (%d)" % (row["token"], row.get("frequency", 0)) for row in report["tokens"][:15]))
    print()
    print("Wall time: base pretraining %s, continuations %s / %s, one HATE run %s."
          % (minutes(seconds, ["base"]), minutes(seconds, ["cont"]),
             minutes(seconds, ["cont_new"]),
             minutes(seconds, ["hate_base_seed1"])))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/continue_summary.py WORK_DIR")
    main(sys.argv[1])
