"""Prints the summary table of a scripts/demo.sh run from the files its stages wrote.

    python scripts/demo_summary.py runs/demo
"""

import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from krbert.tf_compat import tf  # noqa: E402


def read_key_values(path):
    """'key = value' lines (eval_results.txt) as a dict of strings."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def scalar_series_by_tag(event_dir, tags):
    """{tag: (step, value) pairs in step order} of scalar summaries, one pass over the files."""
    points = {tag: {} for tag in tags}
    for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag in points:
                    number = value.simple_value
                    if not number and value.HasField("tensor"):
                        number = float(tf.make_ndarray(value.tensor))
                    points[value.tag][event.step] = number
    return {tag: sorted(series.items()) for tag, series in points.items()}


def scalar_series(event_dir, tag):
    """(step, value) pairs of one scalar summary, in step order, from the event files."""
    return scalar_series_by_tag(event_dir, [tag])[tag]


def stage_seconds(work):
    with open(os.path.join(work, "stage_seconds.tsv"), encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def main(work):
    vocab_lines = sum(1 for _ in open(os.path.join(work, "vocab.txt"), encoding="utf-8"))
    report = json.load(open(os.path.join(work, "vocab.txt.report.json"), encoding="utf-8"))
    instances = sum(json.load(open(p, encoding="utf-8"))["instances"]
                    for p in glob.glob(os.path.join(work, "tfrecords", "*.tfrecord.json")))
    mlm = scalar_series(os.path.join(work, "pretrain"), "masked_lm_loss")
    pretrain_eval = read_key_values(os.path.join(work, "pretrain", "eval_results.txt"))
    nsmc_dev = read_key_values(os.path.join(work, "nsmc_out", "eval_results.txt"))
    nsmc_test = read_key_values(os.path.join(work, "nsmc_out", "test_eval_results.txt"))

    corpus = json.load(open(os.path.join(work, "corpus", "corpus_stats.json"), encoding="utf-8"))
    counts = corpus["counts"]
    rows = [
        ("corpus: documents / sentences / words",
         "{:,} / {:,} / {:,}".format(*[corpus["output"][key] for key in
                                       ("documents", "sentences", "words")])),
        ("corpus: NSMC dev/test texts kept out (paragraphs + sentences)",
         "%d" % (counts.get("excluded_paragraphs", 0) + counts.get("excluded_sentences", 0))),
        ("vocabulary size", "%d" % vocab_lines),
        ("[UNK] rate on the NSMC subset", "%.4f%%" % (100.0 * report["eval"]["unk_rate"])),
        ("pretraining instances written", "%d" % instances),
        ("MLM loss, first -> last logged step",
         "%.3f (step %d) -> %.3f (step %d)" % (mlm[0][1], mlm[0][0], mlm[-1][1], mlm[-1][0])
         if mlm else "n/a"),
        ("MLM accuracy after pretraining (eval)",
         "%.4f" % float(pretrain_eval["masked_lm_accuracy"])),
        ("NSMC accuracy, dev subset", "%.4f" % float(nsmc_dev["eval_accuracy"])),
        ("NSMC accuracy, test subset", "%.4f" % float(nsmc_test["eval_accuracy"])),
    ]
    rows += [("time: %s" % name, "%s s" % seconds) for name, seconds in stage_seconds(work)]
    print("\n| demo (%s) | value |\n|---|---|" % os.path.abspath(work))
    for name, value in rows:
        print("| %s | %s |" % (name, value))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/demo_summary.py WORK_DIR")
    main(sys.argv[1])
