"""Pairs, scores and custom tasks end to end, as users run them: run_classifier.py trains,
scores and exports; predict.py serves; convert_checkpoint.py goes to transformers and back.

Two tiny models share the module: KORSTS (pairs, a score) on the first rows of the real
files, and a custom CSV task (pairs, classes) cut from KorNLI's rows.
"""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_convert_checkpoint import (TOLERANCE, assert_no_missing_or_unexpected, hf_packages,
                                     model_variables, needs_safetensors)
from test_run_classifier import read_tsv
from tiny_models import head
from tiny_models import run_classifier as run

import tokenization
from conftest import ROOT
from krbert import cli
from krbert.classifier import custom_task
from krbert.classifier import features as cf
from krbert.classifier import tasks as ct

PREDICT = os.path.join(ROOT, "predict.py")
CONVERT = os.path.join(ROOT, "convert_checkpoint.py")
VOCAB = os.path.join(ROOT, "vocab", "vocab_20000.txt")


def results(path):
    return dict(line.split(" = ") for line in open(path).read().splitlines() if " = " in line)


def error_line(script, args, stdin=None):
    done = subprocess.run([sys.executable, script] + args, cwd=ROOT, timeout=600,
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def korsts_run(tmp_path_factory, data_dir, classifier_flags):
    """KORSTS: train on 64 pairs, score dev (24) and test (20), export."""
    folder = tmp_path_factory.mktemp("korsts")
    data = folder / "data"
    data.mkdir()
    for name, rows in (("sts-train.tsv", 64), ("sts-dev.tsv", 24), ("sts-test.tsv", 20)):
        head(os.path.join(data_dir, "korsts", name), str(data / name), rows)
    output = str(folder / "out")
    _, log = run(classifier_flags + ["--task_name=KORSTS", "--data_dir=%s" % data,
                           "--output_dir=%s" % output, "--do_train", "--do_eval",
                           "--do_predict", "--do_export"])
    return {"data": str(data), "output": output, "log": log}


def test_a_score_task_writes_correlations_and_one_score_per_pair(korsts_run):
    output = korsts_run["output"]
    dev = results(os.path.join(output, "eval_results.txt"))
    assert dev["split"] == "dev" and dev["num_examples"] == "24" and dev["global_step"] == "8"
    assert -1 <= float(dev["pearson"]) <= 1 and -1 <= float(dev["spearman"]) <= 1
    assert float(dev["eval_loss"]) > 0
    test = results(os.path.join(output, "test_eval_results.txt"))
    assert test["split"] == "test" and test["num_examples"] == "20"
    scores = np.loadtxt(os.path.join(output, "test_results.tsv")).reshape(-1)
    assert scores.shape == (20,) and np.ptp(scores) > 0
    rows = read_tsv(os.path.join(output, "predictions.tsv"))
    assert rows[0] == ["id", "text", "text_b", "prediction", "label"]
    gold = read_tsv(os.path.join(korsts_run["data"], "sts-test.tsv"))[1:]
    assert [r[0] for r in rows[1:]] == [g[3] for g in gold]
    assert [(r[1], r[2]) for r in rows[1:]] == [(g[5], g[6]) for g in gold]
    assert np.allclose([float(r[3]) for r in rows[1:]], scores, atol=1e-6)
    labels = np.array([float(g[4]) for g in gold])
    assert float(test["eval_loss"]) == pytest.approx(np.mean((labels - scores) ** 2), rel=1e-4)
    assert "korsts dev spearman = " in korsts_run["log"]


def test_the_saved_model_of_a_pair_score_task_says_so_and_serves_the_scores(korsts_run):
    export = os.path.join(korsts_run["output"], "export", "1")
    with open(os.path.join(export, "assets.extra", "classifier.json")) as handle:
        metadata = json.load(handle)
    assert metadata["text_b"] is True and metadata["problem_type"] == "regression"
    assert metadata["labels"] == ["score"]
    expected = np.loadtxt(os.path.join(korsts_run["output"], "test_results.tsv"))
    for scores in served_korsts_scores(korsts_run, export):
        assert np.allclose(scores, expected, atol=1e-5)


def test_a_bfloat16_export_of_a_pair_score_task_keeps_its_kind_and_its_scores(
        korsts_run, classifier_flags, tmp_path):
    export, copy = str(tmp_path / "export"), str(tmp_path / "run")
    shutil.copytree(korsts_run["output"], copy)  # a run claims its --output_dir
    run(classifier_flags + ["--task_name=KORSTS", "--output_dir=%s" % copy, "--do_export",
                            "--use_bfloat16", "--export_dir=%s" % export])
    with open(os.path.join(export, "1", "assets.extra", "classifier.json")) as handle:
        metadata = json.load(handle)
    assert metadata["text_b"] is True and metadata["problem_type"] == "regression"
    assert metadata["labels"] == ["score"] and metadata["compute_dtype"] == "bfloat16"
    float32 = np.loadtxt(os.path.join(korsts_run["output"], "test_results.tsv"))
    served = served_korsts_scores(korsts_run, export, ["--use_bfloat16"])
    assert np.allclose(served[0], served[1], atol=1e-3)
    assert not np.array_equal(served[0], float32)  # it computed in bfloat16
    assert np.allclose(served[0], float32, atol=0.05 * max(1.0, np.abs(float32).max()))


def served_korsts_scores(korsts_run, export, checkpoint_flags=()):
    """The scores predict.py gives KorSTS test's pairs, from the SavedModel ``export`` and
    from the run's checkpoint (with ``checkpoint_flags``), each an array in the file's
    order; checks the rows' header and texts."""
    gold = read_tsv(os.path.join(korsts_run["data"], "sts-test.tsv"))[1:]
    lines = "".join("%s\t%s\n" % (g[5], g[6]) for g in gold)
    served = []
    for args in (["--saved_model=%s" % export],
                 ["--init_checkpoint=%s" % korsts_run["output"], "--task_name=korsts",
                  "--bert_config_file=%s" % common_config(korsts_run),
                  "--vocab_file=%s" % VOCAB, "--do_lower_case=False",
                  "--max_seq_length=64"] + list(checkpoint_flags)):
        done = subprocess.run([sys.executable, PREDICT] + args, cwd=ROOT, input=lines,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        out = [line.split("\t") for line in done.stdout.splitlines()]
        assert out[0] == ["text", "text_b", "score"]
        assert [(o[0], o[1]) for o in out[1:]] == [(g[5], g[6]) for g in gold]
        served.append(np.array([float(o[2]) for o in out[1:]]))
    return served


def common_config(run_info):
    with open(os.path.join(run_info["output"], "training_settings.json")) as handle:
        settings = json.load(handle)
    path = os.path.join(run_info["output"], "..", "bert_config_used.json")
    with open(path, "w") as handle:
        json.dump(settings["bert_config"], handle)
    return path


def test_a_pair_model_refuses_a_line_with_one_text_and_a_single_sentence_flag(korsts_run):
    export = os.path.join(korsts_run["output"], "export")
    line = error_line(PREDICT, ["--saved_model=%s" % export], stdin="a\tb\n한 문장만\n")
    assert line == ("error: <stdin>:2: one text, but the model reads sentence pairs: write "
                    "text<TAB>text_b on every line (or pass a single-sentence model)")
    line = error_line(PREDICT, ["--saved_model=%s" % export, "--notext_b"], stdin="a\tb\n")
    assert line.startswith("error: --notext_b: %s is a model of sentence pairs" % export)


# ---------------------------------------------------------------------------------------
# Hugging Face


@needs_safetensors
def test_a_score_head_converts_to_regression_and_back_within_tolerance(korsts_run, tmp_path):
    transformers, torch = hf_packages()
    out = str(tmp_path / "hf")
    config_file = common_config(korsts_run)
    run(["--to=hf", "--init_checkpoint=%s" % korsts_run["output"],
         "--bert_config_file=%s" % config_file, "--vocab_file=%s" % VOCAB,
         "--do_lower_case=False", "--output_dir=%s" % out], script=CONVERT)
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["problem_type"] == "regression" and config["num_labels"] == 1
    model, info = transformers.BertForSequenceClassification.from_pretrained(
        out, output_loading_info=True)
    assert_no_missing_or_unexpected(info)
    model.eval()
    # The test pairs as transformers tokenizes them: the same ids and segments as ours.
    split = ct.get_processor("korsts").read_split(korsts_run["data"], "test")
    tokenizer = tokenization.FullTokenizer(VOCAB, do_lower_case=False)
    hf_tokenizer = transformers.BertTokenizer.from_pretrained(out)
    ours = [cf.pair_to_ids(e, tokenizer, 64) for e in split.examples]
    encoded = hf_tokenizer([e.text for e in split.examples], [e.text_b for e in split.examples],
                           truncation="longest_first", max_length=64, padding=True,
                           return_tensors="pt")
    for row, (ids, segments, _) in enumerate(ours):
        assert encoded["input_ids"][row][:len(ids)].tolist() == ids
        assert encoded["token_type_ids"][row][:len(ids)].tolist() == segments
    with torch.no_grad():
        logits = model(**encoded).logits.numpy().reshape(-1)
    expected = np.loadtxt(os.path.join(korsts_run["output"], "test_results.tsv"))
    assert np.max(np.abs(logits - expected)) < TOLERANCE

    back = str(tmp_path / "tf")
    run(["--to=tf", "--hf_dir=%s" % out, "--output_dir=%s" % back, "--tanh_gelu"],
        script=CONVERT)
    checkpoint = os.path.join(korsts_run["output"], "model.ckpt-8")
    before, after = model_variables(checkpoint), model_variables(back + "/bert_model.ckpt")
    assert sorted(before) == sorted(after)
    assert all(before[name].tobytes() == after[name].tobytes() for name in before)


# ---------------------------------------------------------------------------------------
# A custom CSV task


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory, data_dir, classifier_flags):
    """A custom pair task from KorNLI's rows as CSV (premise, hypothesis, relation)."""
    folder = tmp_path_factory.mktemp("custom")
    data = folder / "data"
    data.mkdir()
    rows = [r[:3] for r in read_tsv(os.path.join(data_dir, "kornli", "xnli.dev.ko.tsv"))[1:101]]
    header = ["premise", "hypothesis", "relation"]
    write_csv(data / "train.csv", header, rows[:64])
    write_csv(data / "dev.csv", header, rows[64:84])
    write_csv(data / "test.csv", header, rows[84:100])
    output = str(folder / "out")
    flags = ["--task_name=custom", "--text_column=premise", "--text_b_column=hypothesis",
             "--label_column=relation", "--data_dir=%s" % data, "--output_dir=%s" % output]
    run(classifier_flags + flags + ["--do_train", "--do_eval", "--do_export"])
    # Prediction from the trained folder alone: the classes come from its task.json.
    run(classifier_flags + ["--task_name=custom", "--data_dir=%s" % data,
                            "--output_dir=%s" % output, "--do_predict"])
    return {"data": str(data), "output": output, "rows": rows}


def test_a_custom_csv_task_keeps_its_classes_in_the_model_folder(custom_run):
    output = custom_run["output"]
    saved = json.load(open(os.path.join(output, custom_task.TASK_FILE)))
    assert saved["labels"] == ["contradiction", "entailment", "neutral"]  # sorted
    assert (saved["text_column"], saved["text_b_column"]) == ("premise", "hypothesis")
    predictions = read_tsv(os.path.join(output, "predictions.tsv"))
    assert predictions[0] == ["id", "text", "text_b", "prediction", "label"]
    assert [(p[1], p[2], p[4]) for p in predictions[1:]] == \
        [tuple(r) for r in custom_run["rows"][84:100]]
    assert {p[3] for p in predictions[1:]} <= set(saved["labels"])
    metadata = json.load(open(os.path.join(output, "export", "1", "assets.extra",
                                           "classifier.json")))
    assert metadata["labels"] == saved["labels"] and metadata["text_b"] is True
    assert "problem_type" not in metadata


@needs_safetensors
def test_a_custom_task_converts_to_hugging_face_with_its_classes(custom_run, tmp_path):
    out = str(tmp_path / "hf")
    config_file = common_config(custom_run)
    run(["--to=hf", "--init_checkpoint=%s" % custom_run["output"],
         "--bert_config_file=%s" % config_file, "--vocab_file=%s" % VOCAB,
         "--do_lower_case=False", "--output_dir=%s" % out], script=CONVERT)
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["id2label"] == {"0": "contradiction", "1": "entailment", "2": "neutral"}
    assert "problem_type" not in config


def test_custom_refusals_name_the_file_line_and_flag(tmp_path):
    write_csv(tmp_path / "train.csv", ["text", "label"], [["a", "yes"], ["b", "no"]])
    write_csv(tmp_path / "dev.csv", ["text", "label"], [["c", "yes"], ["d", "maybe"]])
    processor = ct.get_processor("custom", custom=custom_task.spec_from_values(
        "text", None, "label", "class"))
    processor.learn_labels(processor.read_split(str(tmp_path), "train"))
    assert processor.labels == ("no", "yes")
    with pytest.raises(cli.InputError) as error:
        processor.read_split(str(tmp_path), "dev")
    assert str(error.value).startswith("%s:3: label 'maybe' (column 'label') never appears in "
                                       "the training file" % (tmp_path / "dev.csv"))
    scores = ct.get_processor("custom", custom=custom_task.spec_from_values(
        "text", None, "label", "score"))
    with pytest.raises(cli.InputError) as error:
        scores.read_split(str(tmp_path), "train")
    assert str(error.value).startswith("%s:2: label 'yes' (column 'label') is not a number, but "
                                       "--label_type=score" % (tmp_path / "train.csv"))
    missing = ct.get_processor("custom", custom=custom_task.spec_from_values(
        "text", None, "stars", "class"))
    with pytest.raises(cli.InputError, match=r"train.csv:1: the header line must name the "
                                             r"columns text, stars \(missing stars\)"):
        missing.read_split(str(tmp_path), "train")


def test_a_custom_label_column_missing_is_one_line_as_the_user_sees_it(tmp_path,
                                                                       classifier_flags):
    write_csv(tmp_path / "train.csv", ["review", "label"], [["좋다", "1"], ["싫다", "0"]])
    line = error_line(os.path.join(ROOT, "run_classifier.py"), classifier_flags + [
        "--task_name=custom", "--text_column=review", "--label_column=stars",
        "--data_dir=%s" % tmp_path, "--output_dir=%s" % (tmp_path / "out"), "--do_train"])
    assert line == ("error: %s:1: the header line must name the columns review, stars "
                    "(missing stars); found review,label" % (tmp_path / "train.csv"))
