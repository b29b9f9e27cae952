"""predict.py and the SavedModel of run_classifier.py --do_export, as users run them.

The model is test_run_classifier's tiny NSMC run (2 layers, 32 wide, 7 training steps,
max_seq_length 64); its test_results.tsv, written by run_classifier.py --do_predict, is
what predict.py and the SavedModel must reproduce.
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

import modeling
import tokenization
from krbert.classifier import features as classifier_features
from krbert.classifier import model as classifier_model
from krbert.classifier import tasks
from krbert.tf_compat import tf
from tiny_models import TINY_CONFIG, run_classifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "predict.py")
ATOL = 1e-5
# A loaded SavedModel runs a graph that TensorFlow's optimizer fuses differently from the
# checkpoint's (seen once: 1.24e-5 apart in probability on the tiny model; cause not traced).
SAVED_MODEL_ATOL = 5e-5
"""predict.py writes six decimals; the rest is float32 noise of other batch shapes."""


def predict(args, stdin=None, expect_ok=True):
    """Runs predict.py; returns (returncode, stdout, stderr)."""
    done = subprocess.run([sys.executable, SCRIPT] + args, cwd=ROOT, timeout=600,
                          input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    if expect_ok and done.returncode != 0:
        pytest.fail("predict.py failed:\n%s" % err[-4000:], pytrace=False)
    return done.returncode, out, err


def parse(tsv_text):
    """(header, texts, labels, probabilities [N, C]) of predict.py's output."""
    lines = tsv_text.split("\n")
    assert lines[-1] == ""
    rows = [line.split("\t") for line in lines[1:-1]]
    return (lines[0].split("\t"), [r[0] for r in rows], [r[1] for r in rows],
            np.array([[float(p) for p in r[2:]] for r in rows]).reshape(len(rows), -1))


def model_flags(common_flags):
    """The config, vocabulary and casing flags of the tiny run, and --max_seq_length."""
    keep = ("--bert_config_file", "--vocab_file", "--do_lower_case", "--max_seq_length")
    return [f for f in common_flags if f.startswith(keep)]


@pytest.fixture(scope="module")
def test_texts(nsmc_finetuned, tmp_path_factory):
    """The run's test split as run_classifier read it, one text per line, and its
    test_results.tsv probabilities."""
    split = tasks.get_processor("nsmc").read_split(nsmc_finetuned["data"], "test")
    texts = [e.text for e in split.examples]
    path = str(tmp_path_factory.mktemp("texts") / "reviews.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(t + "\n" for t in texts))
    expected = np.loadtxt(os.path.join(nsmc_finetuned["output"], "test_results.tsv"),
                          delimiter="\t")
    return {"path": path, "texts": texts, "probabilities": expected}


def test_probabilities_equal_run_classifiers_predictions(nsmc_finetuned, classifier_flags,
                                                         test_texts,
                                                         tmp_path):
    output = str(tmp_path / "labels.tsv")
    _, out, log = predict(model_flags(classifier_flags) + [
        "--task_name=NSMC", "--init_checkpoint=%s" % nsmc_finetuned["output"],
        "--input_file=%s" % test_texts["path"], "--output_file=%s" % output])
    assert out == ""
    assert os.listdir(str(tmp_path)) == ["labels.tsv"]  # no temporary file left
    with open(output, encoding="utf-8") as handle:
        header, texts, labels, probabilities = parse(handle.read())
    assert header == ["text", "label", "p_0", "p_1"]
    assert texts == test_texts["texts"]
    assert probabilities.shape == (40, 2)
    assert np.allclose(probabilities, test_texts["probabilities"], atol=ATOL)
    assert labels == [str(i) for i in test_texts["probabilities"].argmax(axis=1)]
    assert "model.ckpt-7" in log  # the folder's latest checkpoint
    assert "3 empty line(s), predicted as empty texts" in log


def test_stdin_prefix_and_unbucketed_batches_give_the_same_rows(nsmc_finetuned, classifier_flags,
                                                                test_texts):
    """The checkpoint prefix, text on stdin, output on stdout, batches of 3 in input order
    padded to max_seq_length: the same rows as length-bucketed batches of 64."""
    with open(test_texts["path"], "rb") as handle:
        stdin = handle.read()
    _, out, _ = predict(model_flags(classifier_flags) + [
        "--task_name=nsmc", "--init_checkpoint=%s" % os.path.join(nsmc_finetuned["output"],
                                                                  "model.ckpt-7"),
        "--bucket_by_length=false", "--batch_size=3"], stdin=stdin)
    _, texts, _, probabilities = parse(out)
    assert texts == test_texts["texts"]
    assert np.allclose(probabilities, test_texts["probabilities"], atol=ATOL)


def test_tricky_lines_each_get_their_row_and_are_counted(nsmc_finetuned, classifier_flags,
                                                         tmp_path):
    review = "이 영화 정말 재미있어요 배우들 연기도 좋고 "
    lines = [
        "좋은 영화".encode("utf-8"),
        b"",
        b"\xff\xfe" + "좋은 영화".encode("utf-8"),  # not UTF-8; U+FFFD is dropped
        "   ".encode("utf-8"),
        (review * 300 + "최고").encode("utf-8"),  # cut at 62 tokens: the end is lost
        (review * 300 + "최악").encode("utf-8"),
        "탭\t있음\r".encode("utf-8"),  # CRLF
        "마지막 줄".encode("utf-8"),  # no line break at the end
    ]
    path = tmp_path / "tricky.txt"
    path.write_bytes(b"\n".join(lines))
    _, out, log = predict(model_flags(classifier_flags) + [
        "--task_name=NSMC", "--init_checkpoint=%s" % nsmc_finetuned["output"],
        "--input_file=%s" % path])
    _, texts, labels, probabilities = parse(out)
    assert len(texts) == len(lines) == len(probabilities)
    assert texts[0] == "좋은 영화" and texts[1] == "" and texts[6] == "탭 있음"
    assert texts[2] == "\ufffd\ufffd좋은 영화"
    assert np.allclose(probabilities[2], probabilities[0], atol=1e-6)
    assert np.allclose(probabilities[4], probabilities[5], atol=1e-6)
    assert np.allclose(probabilities[1], probabilities[3], atol=1e-6)
    assert not np.allclose(probabilities[0], probabilities[1], atol=1e-6)
    assert set(labels) <= {"0", "1"}
    assert "2 empty line(s), predicted as empty texts (first: %s:2)" % path in log
    assert "1 line(s) not valid UTF-8" in log and "(first: %s:3)" % path in log
    assert "2 line(s) longer than --max_seq_length tokens, cut (first: %s:5)" % path in log
    assert "Predicted 8 lines" in log


def write_pretraining_checkpoint(folder):
    """A checkpoint of the tiny BERT alone (no classifier), as pretraining leaves it."""
    graph = tf.Graph()
    with graph.as_default():
        ids = tf.placeholder(tf.int32, [None, None])
        modeling.BertModel(modeling.BertConfig.from_dict(TINY_CONFIG), False, ids)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            return tf.train.Saver().save(session, os.path.join(str(folder), "model.ckpt"))


def one_line_error(args, stdin=b"text\n"):
    code, out, log = predict(args, stdin=stdin, expect_ok=False)
    assert code == 1 and out == ""
    assert "Traceback" not in log
    return log.strip().splitlines()[-1]


def test_a_checkpoint_of_another_task_or_model_stops_with_one_line(nsmc_finetuned, classifier_flags,
                                                                   tmp_path):
    flags = model_flags(classifier_flags)
    checkpoint = "--init_checkpoint=%s" % nsmc_finetuned["output"]
    last = one_line_error(flags + ["--task_name=HATE", checkpoint])
    assert last.startswith("error: %s" % os.path.join(nsmc_finetuned["output"], "model.ckpt-7"))
    assert ("its classifier has 2 classes but --task_name=HATE --hate_label=hate has 3 "
            "(none, offensive, hate)") in last

    pretrained = write_pretraining_checkpoint(tmp_path)
    last = one_line_error(flags + ["--task_name=NSMC", "--init_checkpoint=%s" % pretrained])
    assert last.startswith("error: %s holds no classifier" % pretrained)

    wider = tmp_path / "bert_config_wider.json"
    wider.write_text(json.dumps(dict(TINY_CONFIG, intermediate_size=128)))
    last = one_line_error([f for f in flags if not f.startswith("--bert_config_file")] + [
        "--task_name=NSMC", checkpoint, "--bert_config_file=%s" % wider])
    assert "intermediate/dense/kernel has shape [32, 64] there but [32, 128]" in last

    (tmp_path / "empty").mkdir()
    last = one_line_error(flags + ["--task_name=NSMC", "--init_checkpoint=%s"
                                   % (tmp_path / "empty")])
    assert last.startswith("error: --init_checkpoint=%s is a folder without a checkpoint"
                           % (tmp_path / "empty"))
    last = one_line_error(flags + ["--task_name=NSMC", checkpoint,
                                   "--input_file=%s" % (tmp_path / "missing.txt")])
    assert last.startswith("error: --input_file=%s not found" % (tmp_path / "missing.txt"))


# ---------------------------------------------------------------------------------------
# SavedModel


def test_export_writes_numbered_versions_that_saved_model_cli_shows(nsmc_saved_model):
    assert sorted(os.listdir(nsmc_saved_model)) == ["1", "2"]  # nothing temporary left
    version = os.path.join(nsmc_saved_model, "2")
    assert sorted(os.listdir(os.path.join(version, "assets.extra"))) == [
        "classifier.json", "vocab.txt"]
    with open(os.path.join(version, "assets.extra", "classifier.json")) as handle:
        metadata = json.load(handle)
    assert metadata["labels"] == ["0", "1"] and metadata["max_seq_length"] == 64
    assert metadata["do_lower_case"] is False and metadata["task"] == "--task_name=NSMC"
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", version, "--all"], timeout=300,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    text = " ".join(shown.stdout.split())
    assert "MetaGraphDef with tag-set: 'serve'" in text
    assert "signature_def['serving_default']" in text
    for name in classifier_model.INPUT_NAMES:
        assert ("inputs['%s'] tensor_info: dtype: DT_INT32 shape: (-1, -1) name: %s:0"
                % (name, name)) in text
    assert "outputs['probabilities'] tensor_info: dtype: DT_FLOAT shape: (-1, 2)" in text
    assert "outputs['label_ids'] tensor_info: dtype: DT_INT32 shape: (-1)" in text
    assert "Method name is: tensorflow/serving/predict" in text


def test_saved_model_loads_and_gives_the_checkpoints_probabilities(nsmc_saved_model, test_texts,
                                                                   classifier_flags):
    """Loaded with TensorFlow's SavedModel loader and fed by its signature's names."""
    vocab = next(arg.split("=", 1)[1] for arg in classifier_flags
                 if arg.startswith("--vocab_file="))
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
    ids = [classifier_features.example_to_ids(tasks.InputExample("", t, None, 0),
                                              tokenizer, 64)[0] for t in test_texts["texts"]]
    arrays = classifier_model.pad_batch(ids, max(len(i) for i in ids))
    graph = tf.Graph()
    with tf.Session(graph=graph) as session:
        meta_graph = tf.saved_model.loader.load(
            session, [tf.saved_model.tag_constants.SERVING], os.path.join(nsmc_saved_model, "1"))
        signature = meta_graph.signature_def["serving_default"]
        assert signature.method_name == "tensorflow/serving/predict"
        assert sorted(signature.inputs) == ["input_ids", "input_mask", "segment_ids"]
        assert sorted(signature.outputs) == ["label_ids", "probabilities"]
        for name in signature.inputs:
            assert signature.inputs[name].dtype == tf.int32.as_datatype_enum
            assert [d.size for d in signature.inputs[name].tensor_shape.dim] == [-1, -1]
        feed = {signature.inputs[name].name: array
                for name, array in zip(classifier_model.INPUT_NAMES, arrays)}
        probabilities, label_ids = session.run(
            [signature.outputs["probabilities"].name, signature.outputs["label_ids"].name],
            feed)
    assert probabilities.dtype == np.float32 and label_ids.dtype == np.int32
    assert np.allclose(probabilities, test_texts["probabilities"], atol=SAVED_MODEL_ATOL)
    assert list(label_ids) == list(test_texts["probabilities"].argmax(axis=1))


def test_predict_serves_from_the_saved_model(nsmc_saved_model, nsmc_finetuned, classifier_flags,
                                             test_texts):
    _, out, log = predict(["--saved_model=%s" % nsmc_saved_model,
                           "--input_file=%s" % test_texts["path"]])
    assert os.path.join(nsmc_saved_model, "2") in log  # the latest version
    _, texts, labels, probabilities = parse(out)
    assert texts == test_texts["texts"]
    assert np.allclose(probabilities, test_texts["probabilities"], atol=SAVED_MODEL_ATOL)
    last = one_line_error(["--saved_model=%s" % nsmc_saved_model, "--task_name=NSMC"])
    assert last.startswith("error: --saved_model carries the model") and "drop --task_name" in last


# ---------------------------------------------------------------------------------------
# Outputs never over inputs; damaged SavedModels; export failures: one line each.

def digests(paths):
    found = {}
    for path in paths:
        with open(str(path), "rb") as handle:
            found[str(path)] = handle.read()
    return found


def test_an_output_file_that_is_an_input_is_refused_and_left_as_it_was(nsmc_finetuned,
                                                                       classifier_flags,
                                                                       test_texts, tmp_path):
    flags = dict(f[2:].split("=", 1) for f in model_flags(classifier_flags))
    texts = tmp_path / "in.txt"
    texts.write_bytes(open(test_texts["path"], "rb").read())
    link = tmp_path / "link.txt"
    os.symlink(str(texts), str(link))
    checkpoint_list = os.path.join(nsmc_finetuned["output"], "checkpoint")
    before = digests([texts, flags["vocab_file"], flags["bert_config_file"], checkpoint_list])
    base = model_flags(classifier_flags) + ["--task_name=NSMC", "--init_checkpoint=%s"
                                            % nsmc_finetuned["output"], "--input_file=%s" % texts]
    for output, named, flag in [(texts, texts, "--input_file"), (link, texts, "--input_file"),
                                (flags["vocab_file"], flags["vocab_file"], "--vocab_file"),
                                (flags["bert_config_file"], flags["bert_config_file"],
                                 "--bert_config_file"),
                                (checkpoint_list, checkpoint_list, "--init_checkpoint")]:
        assert one_line_error(base + ["--output_file=%s" % output]) == (
            "error: %s: --output_file would write over this input (%s); write the output "
            "elsewhere" % (named, flag))
    assert digests(before) == before and sorted(os.listdir(str(tmp_path))) == ["in.txt",
                                                                               "link.txt"]
    assert one_line_error(base[:-1] + ["--input_file=%s" % tmp_path]) == (
        "error: --input_file=%s is a folder; pass a text file, one text per line, or give the "
        "text on stdin" % tmp_path)


@pytest.mark.parametrize("damage", ["variables", "metadata", "saved_model.pb"])
def test_a_damaged_saved_model_is_one_line(nsmc_saved_model, tmp_path, damage):
    version = str(tmp_path / "1")
    shutil.copytree(os.path.join(nsmc_saved_model, "1"), version)
    if damage == "variables":
        data = [n for n in os.listdir(os.path.join(version, "variables")) if ".data-" in n][0]
        path = os.path.join(version, "variables", data)
        os.truncate(path, os.path.getsize(path) // 2)
    elif damage == "metadata":
        path = os.path.join(version, "assets.extra", "classifier.json")
        with open(path, "r+") as handle:
            handle.truncate(len(handle.read()) // 2)
    else:
        path = os.path.join(version, "saved_model.pb")
        with open(path, "r+b") as handle:
            handle.seek(0)
            handle.write(b"\xff" * 64)
    last = one_line_error(["--saved_model=%s" % version])
    assert last.startswith("error: %s: " % path if damage == "metadata" else
                           "error: --saved_model=%s cannot be loaded (" % version), last
    assert last.endswith("export it again (run_classifier.py --do_export)"), last


def export_args(classifier_flags, nsmc_finetuned, export, folder):
    """Flags exporting a copy (in ``folder``) of the trained run: a run claims its
    --output_dir while it runs, so the shared one is never given as one."""
    run = os.path.join(str(folder), "run")
    if not os.path.isdir(run):
        shutil.copytree(nsmc_finetuned["output"], run)
    return classifier_flags + ["--task_name=NSMC", "--output_dir=%s" % run, "--do_export",
                               "--export_dir=%s" % export]


def test_an_export_dir_that_is_a_file_is_one_line(nsmc_finetuned, classifier_flags, tmp_path):
    blocker = tmp_path / "export"
    blocker.write_text(u"a file")
    code, log = run_classifier(export_args(classifier_flags, nsmc_finetuned, blocker, tmp_path),
                               expect_ok=False)
    assert code == 1 and "Traceback" not in log
    assert log.strip().splitlines()[-1] == (
        "error: --export_dir=%s is a file; give a folder (the SavedModel versions go in it)"
        % blocker)
    assert blocker.read_text() == u"a file"


def test_a_full_disk_during_export_is_one_line_and_leaves_nothing(nsmc_finetuned, classifier_flags,
                                                                  tmp_path,
                                                                  file_size_limit):
    export = tmp_path / "export"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "run_classifier.py")] +
                          export_args(classifier_flags, nsmc_finetuned, export, tmp_path),
                          cwd=ROOT, timeout=600,
                          preexec_fn=file_size_limit(100000), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1].startswith(
        "error: %s: could not be written (" % (export / "1")), done.stderr[-3000:]
    assert os.listdir(str(export)) == []


def test_a_read_only_export_dir_is_one_line(nsmc_finetuned, classifier_flags, read_only_folder):
    code, log = run_classifier(export_args(classifier_flags, nsmc_finetuned,
                                           read_only_folder / "export", read_only_folder.parent),
                               expect_ok=False)
    assert code == 1 and "Traceback" not in log, log[-3000:]
    assert log.strip().splitlines()[-1].startswith(
        "error: %s: could not be written (" % (read_only_folder / "export"))
    assert "Read-only file system" in log.strip().splitlines()[-1]


def test_an_export_killed_midway_is_cleared_by_the_next_export(nsmc_finetuned, classifier_flags,
                                                               tmp_path):
    export = tmp_path / "export"
    dead = subprocess.Popen(["true"])
    dead.wait()
    left = export / ("1.tmp-%s.%d" % (socket.gethostname().split(".")[0], dead.pid))
    (left / "variables").mkdir(parents=True)
    (left / "saved_model.pb").write_bytes(b"half")
    _, log = run_classifier(export_args(classifier_flags, nsmc_finetuned, export, tmp_path))
    assert sorted(os.listdir(str(export))) == ["1"]
    assert "Removed %s, left by a run that died" % left in log


def test_export_without_a_checkpoint_names_the_flag(classifier_flags, tmp_path):
    output = tmp_path / "out"
    code, log = run_classifier(classifier_flags + ["--task_name=NSMC", "--output_dir=%s" % output,
                                                   "--do_export"], expect_ok=False)
    assert code == 1 and "Traceback" not in log
    assert log.strip().splitlines()[-1] == (
        "error: --do_export: no checkpoint in --output_dir=%s and no --init_checkpoint; train "
        "first (--do_train) or pass one" % output)
    assert not output.exists()
