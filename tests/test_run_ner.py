"""run_ner.py end to end on the shipped KLUE-NER sample (a tiny model, a few steps): its
outputs agree with each other and with the SavedModel it exports; bad input stops it with
one line."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from krbert import cli
from krbert.tagging import klue, metrics

TINY = os.path.join(ROOT, "vocab", "bert_config_tiny.json")
VOCAB = os.path.join(ROOT, "vocab", "vocab_20000.txt")


def run_ner(args, **kwargs):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "run_ner.py"), "--vocab_file=" + VOCAB,
         "--bert_config_file=" + TINY, "--do_lower_case=False", "--max_seq_length=64"] + args,
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900, **kwargs)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """(klue folder, output_dir, stderr) of one training run with eval, predict and export."""
    klue_dir = os.path.join(data_dir, "klue")
    output_dir = str(tmp_path_factory.mktemp("ner") / "run")
    done = run_ner(["--data_dir=" + klue_dir, "--output_dir=" + output_dir, "--do_train",
                    "--do_eval", "--do_predict", "--do_export", "--num_train_epochs=1",
                    "--train_batch_size=32", "--learning_rate=1e-3"])
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, stderr[-3000:]
    return klue_dir, output_dir, stderr


def read_results(path):
    with open(path, encoding="utf-8") as f:
        return dict(line.rstrip("\n").split(" = ", 1) for line in f)


def test_the_carved_split_is_announced_once(trained):
    _, _, stderr = trained
    assert stderr.count("klue-ner-v1.1_train.tsv not in") == 1


def test_eval_results_score_the_written_predictions(trained):
    klue_dir, output_dir, _ = trained
    gold = klue.read_splits(klue_dir, ["dev"])["dev"][0]
    predicted = klue.read_file(os.path.join(output_dir, "predictions.tsv")).sentences
    assert [s.guid for s in predicted] == [s.guid for s in gold]
    assert [s.chars for s in predicted] == [s.chars for s in gold]
    results = read_results(os.path.join(output_dir, "eval_results.txt"))
    scores = metrics.ner_scores(gold, [s.tags for s in predicted])
    for key in ("entity_f1", "entity_macro_f1", "char_macro_f1"):
        assert results[key] == "%.4f" % scores[key]
    train = klue.read_splits(klue_dir, ["train"])["train"][0]
    assert int(results["num_sentences"]) == len(gold) == len(predicted)
    assert len(train) == 4 * len(gold)  # the carved split: 80% and 20%
    assert int(results["global_step"]) == len(train) // 32  # one epoch of batches of 32


def test_the_exported_tagger_tags_as_the_run_did(trained):
    from krbert.tagging import serving
    _, output_dir, _ = trained
    predicted = klue.read_file(os.path.join(output_dir, "predictions.tsv")).sentences[:16]
    tagger = serving.Tagger(os.path.join(output_dir, "export"))
    try:
        tags = tagger.tag_batch(["".join(s.chars) for s in predicted])
        entities = tagger.tag(["".join(predicted[0].chars)])
    finally:
        tagger.close()
    assert tags == [s.tags for s in predicted]
    assert [(e["type"], e["start"], e["end"] - 1) for e in entities[0]] == \
        metrics.entities(predicted[0].tags)


def test_predict_py_serves_the_tagger(trained, tmp_path):
    _, output_dir, _ = trained
    source = tmp_path / "in.txt"
    source.write_text("서울에서 만났다\n\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "predict.py"),
         "--saved_model=" + os.path.join(output_dir, "export"), "--input_file=" + str(source)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    lines = done.stdout.decode("utf-8").splitlines()
    assert lines[0] == "text\tentities"
    assert [line.split("\t")[0] for line in lines[1:]] == ["서울에서 만났다", ""]
    assert all(line.split("\t")[1].startswith("[") for line in lines[1:])


def test_a_line_without_a_tab_stops_with_one_line(tmp_path):
    data = tmp_path / "klue"
    data.mkdir()
    (data / klue.FILES["dev"]).write_text("## s-1\t서\n서 B-LC\n\n", encoding="utf-8")
    done = run_ner(["--data_dir=" + str(data), "--output_dir=" + str(tmp_path / "out"),
                    "--do_train"])
    stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
    assert done.returncode == 1
    assert stderr[-1] == ("error: %s:2: no tab in '서 B-LC'; a character line is the "
                          "character, a tab and its tag (e.g. '서\\tB-LC'); fix the line"
                          % (data / klue.FILES["dev"]))


def test_missing_files_are_refused_in_process(tmp_path):
    with pytest.raises(cli.InputError, match="holds neither klue-ner-v1.1_train.tsv"):
        klue.find_split(str(tmp_path), "train")


def test_predictions_never_overwrite_the_predicted_file(trained, tmp_path):
    _, output_dir, _ = trained
    out = tmp_path / "out"
    out.mkdir()
    source = out / "predictions.tsv"
    source.write_text("## s\t가\n가\tO\n\n", encoding="utf-8")
    done = run_ner(["--output_dir=%s" % out, "--init_checkpoint=%s" % output_dir,
                    "--do_predict", "--predict_file=%s" % source])
    stderr = done.stderr.decode("utf-8", "replace").strip().splitlines()
    assert done.returncode == 1
    assert stderr[-1].startswith("error: %s: --output_dir would write over this input "
                                 "(--predict_file)" % source)
    assert source.read_text(encoding="utf-8") == "## s\t가\n가\tO\n\n"
