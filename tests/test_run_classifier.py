"""run_classifier.py end to end, as users run it: train, evaluate and predict on tiny data.

Each run is a separate process (the script's flags are process-wide). The model is a
2-layer, 32-wide BERT with the shipped vocabulary; the data are the first rows of the real
splits (the full data or the shipped sample), written to a temporary folder, plus HATE's real
unlabelled test file.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "run_classifier.py")

TINY_CONFIG = {
    "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 64,
    "max_position_embeddings": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
    "type_vocab_size": 2, "vocab_size": 20000,
}


def run(args, expect_ok=True):
    """Runs run_classifier.py; returns (returncode, stderr)."""
    done = subprocess.run([sys.executable, SCRIPT] + args, cwd=ROOT, timeout=600,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if expect_ok and done.returncode != 0:
        pytest.fail("run_classifier.py failed:\n%s" % done.stderr[-4000:], pytrace=False)
    return done.returncode, done.stderr


def head(src, dst, rows, extra=()):
    """Header and the first ``rows`` data lines of ``src`` (then ``extra`` lines)."""
    with open(src, encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(rows + 1)]
    with open(dst, "w", encoding="utf-8") as handle:
        handle.writelines(lines + list(extra))


def read_tsv(path):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n").split("\t") for line in handle]


@pytest.fixture(scope="module")
def common(tmp_path_factory):
    folder = tmp_path_factory.mktemp("common")
    config = str(folder / "bert_config_tiny.json")
    with open(config, "w") as handle:
        json.dump(TINY_CONFIG, handle)
    return ["--bert_config_file=%s" % config,
            "--vocab_file=%s" % os.path.join(ROOT, "vocab", "vocab_20000.txt"),
            "--do_lower_case=False", "--max_seq_length=64", "--train_batch_size=8",
            "--eval_batch_size=8", "--predict_batch_size=8", "--learning_rate=1e-3",
            "--num_train_epochs=1", "--save_checkpoints_steps=1000"]


@pytest.fixture(scope="module")
def nsmc_run(tmp_path_factory, data_dir, common):
    """Train (60 examples), eval (24) and predict (40 + the 3 empty documents)."""
    folder = tmp_path_factory.mktemp("nsmc")
    data = folder / "data"
    data.mkdir()
    real = os.path.join(data_dir, "nsmc")
    head(os.path.join(real, "train.tsv"), str(data / "train.tsv"), 60)
    head(os.path.join(real, "dev.tsv"), str(data / "dev.tsv"), 24)
    with open(os.path.join(real, "test.tsv"), encoding="utf-8") as handle:
        rows = handle.readlines()
    empty = [r for r in rows[1:] if r.split("\t")[1] == ""]
    quoted = [r for r in rows[1:] if r.split("\t")[1].startswith('"')][:3]
    assert len(empty) == 3 and len(quoted) == 3
    head(os.path.join(real, "test.tsv"), str(data / "test.tsv"), 34, empty + quoted)
    output = str(folder / "out")
    _, log = run(common + ["--task_name=nsmc", "--data_dir=%s" % data,
                           "--output_dir=%s" % output, "--do_train", "--do_eval",
                           "--do_predict"])
    return {"data": str(data), "output": output, "log": log}


def test_nsmc_writes_every_output_with_the_right_row_counts(nsmc_run):
    output = nsmc_run["output"]
    results = dict(line.split(" = ") for line in
                   open(os.path.join(output, "eval_results.txt")).read().splitlines()
                   if " = " in line)
    assert results["global_step"] == "7"  # int(60 / 8 * 1 epoch)
    assert results["split"] == "dev" and results["num_examples"] == "24"
    assert 0.0 <= float(results["eval_accuracy"]) <= 1.0 and float(results["eval_loss"]) > 0
    assert "confusion_matrix" in open(os.path.join(output, "eval_results.txt")).read()

    probabilities = np.loadtxt(os.path.join(output, "test_results.tsv"), delimiter="\t")
    assert probabilities.shape == (40, 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    test_rows = read_tsv(os.path.join(nsmc_run["data"], "test.tsv"))
    predictions = read_tsv(os.path.join(output, "predictions.tsv"))
    assert predictions[0] == ["id", "text", "prediction", "label"]
    assert [p[0] for p in predictions[1:]] == [r[0] for r in test_rows[1:]]
    assert [p[3] for p in predictions[1:]] == [r[2] for r in test_rows[1:]]
    predicted = [str(i) for i in probabilities.argmax(axis=1)]
    assert [p[2] for p in predictions[1:]] == predicted
    # Empty documents are kept; doubly quoted ones are restored.
    assert sum(1 for p in predictions[1:] if p[1] == "") == 3
    assert not any(p[1].startswith('"""') for p in predictions[1:])

    test_results = open(os.path.join(output, "test_eval_results.txt")).read()
    assert "split = test" in test_results and "num_examples = 40" in test_results
    assert "3 empty text(s) kept" in nsmc_run["log"]
    assert "loss = " in nsmc_run["log"]
    assert not os.path.exists(os.path.join(output, "submission.csv"))


def test_second_run_reuses_the_cache_and_predicts_in_input_order(nsmc_run, common, tmp_path):
    """From the trained checkpoint, with the first run's cache: dev is not tokenized again;
    batches padded to max_seq_length score dev exactly like length-bucketed ones; the test
    rows reversed get, id by id, the probabilities they got before."""
    data = tmp_path / "data"
    data.mkdir()
    with open(os.path.join(nsmc_run["data"], "dev.tsv"), encoding="utf-8") as handle:
        (data / "dev.tsv").write_text(handle.read(), encoding="utf-8")
    with open(os.path.join(nsmc_run["data"], "test.tsv"), encoding="utf-8") as handle:
        lines = handle.readlines()
    with open(str(data / "test.tsv"), "w", encoding="utf-8") as handle:
        handle.writelines(lines[:1] + lines[:0:-1])
    output = str(tmp_path / "out")
    _, log = run(common + ["--task_name=NSMC", "--data_dir=%s" % data,
                           "--output_dir=%s" % output, "--cache_dir=%s" % nsmc_run["output"],
                           "--init_checkpoint=%s" % os.path.join(nsmc_run["output"],
                                                                  "model.ckpt-7"),
                           "--do_eval", "--do_predict", "--bucket_by_length=false",
                           "--eval_batch_size=5", "--predict_batch_size=3"])
    assert "Feature cache hit for nsmc dev" in log
    assert "tokenizing dev" not in log and "tokenizing test" in log
    assert "padded to --max_seq_length=64" in log

    def scores(folder):
        text = open(os.path.join(folder, "eval_results.txt")).read()
        return [float(line.split(" = ")[1]) for line in text.splitlines()
                if line.startswith(("eval_accuracy", "eval_loss"))]

    assert np.allclose(scores(output), scores(nsmc_run["output"]), atol=1e-5)

    first = np.loadtxt(os.path.join(nsmc_run["output"], "test_results.tsv"), delimiter="\t")
    again = np.loadtxt(os.path.join(output, "test_results.tsv"), delimiter="\t")
    ids = [r[0] for r in read_tsv(os.path.join(nsmc_run["data"], "test.tsv"))[1:]]
    reversed_ids = [r[0] for r in read_tsv(os.path.join(output, "predictions.tsv"))[1:]]
    assert reversed_ids == ids[::-1]
    assert np.allclose(again[::-1], first, atol=1e-5)
    assert not np.allclose(again, first, atol=1e-5)  # the order does matter here


def eval_figures(output):
    """The eval_accuracy and eval_loss lines of a run's eval_results.txt, and its
    test_results.tsv, as text."""
    results = open(os.path.join(output, "eval_results.txt")).read().splitlines()
    figures = [line for line in results if line.startswith(("eval_accuracy", "eval_loss"))]
    assert len(figures) == 2
    return figures, open(os.path.join(output, "test_results.tsv")).read()


def test_the_same_seed_gives_the_same_figures(nsmc_run, common, tmp_path):
    """Training again with the same (default) seed gives bit-identical eval figures and test
    probabilities; another seed changes them."""
    def train(seed_flags, name):
        output = str(tmp_path / name)
        run(common + ["--task_name=nsmc", "--data_dir=%s" % nsmc_run["data"],
                      "--output_dir=%s" % output, "--do_train", "--do_eval",
                      "--do_predict"] + seed_flags)
        return eval_figures(output)

    first = eval_figures(nsmc_run["output"])
    assert train([], "again") == first
    other = train(["--seed=7"], "other")
    assert other[0][1] != first[0][1] and other[1] != first[1]  # eval_loss, probabilities


def test_hate_writes_the_kaggle_submission_for_the_real_test_file(tmp_path, data_dir, common):
    data = tmp_path / "data"
    data.mkdir()
    real = os.path.join(data_dir, "hate")
    head(os.path.join(real, "train.tsv"), str(data / "train.tsv"), 40)
    head(os.path.join(real, "dev.tsv"), str(data / "dev.tsv"), 16)
    os.symlink(os.path.join(real, "test.no_label.tsv"), str(data / "test.no_label.tsv"))
    output = str(tmp_path / "out")
    run(common + ["--task_name=HATE", "--data_dir=%s" % data, "--output_dir=%s" % output,
                  "--do_train", "--do_eval", "--do_predict", "--predict_batch_size=64"])

    with open(os.path.join(output, "submission.csv"), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    with open(os.path.join(real, "test.no_label.tsv"), encoding="utf-8", newline="") as handle:
        comments = [r[0] for r in csv.reader(handle, delimiter="\t")][1:]
    assert rows[0] == ["comments", "label"]
    assert len(rows) == len(comments) + 1 and len(comments) >= 300
    assert [r[0] for r in rows[1:]] == comments
    assert {r[1] for r in rows[1:]} <= {"0", "1", "2"}

    probabilities = np.loadtxt(os.path.join(output, "test_results.tsv"), delimiter="\t")
    assert probabilities.shape == (len(comments), 3)
    assert [r[1] for r in rows[1:]] == [str(i) for i in probabilities.argmax(axis=1)]
    predictions = read_tsv(os.path.join(output, "predictions.tsv"))
    assert predictions[0] == ["id", "text", "prediction"] and len(predictions) == len(rows)
    assert {p[2] for p in predictions[1:]} <= {"none", "offensive", "hate"}

    results = open(os.path.join(output, "eval_results.txt")).read()
    for key in ("eval_macro_f1", "eval_accuracy", "eval_loss", "precision_offensive",
                "recall_hate", "f1_none", "confusion_matrix"):
        assert key in results
    assert not os.path.exists(os.path.join(output, "test_eval_results.txt"))


def test_a_bad_row_stops_with_one_line_naming_file_and_line(tmp_path, common):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("id\tdocument\tlabel\n1\t좋다\t1\n2\t나쁘다\n",
                                    encoding="utf-8")
    code, log = run(common + ["--task_name=nsmc", "--data_dir=%s" % data,
                              "--output_dir=%s" % (tmp_path / "out"), "--do_train"],
                    expect_ok=False)
    last = log.strip().splitlines()[-1]
    assert code == 1
    assert last.startswith("error: %s:3: expected 3 tab-separated columns" % (data / "train.tsv"))
    assert "Traceback" not in log
