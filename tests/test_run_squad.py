"""run_squad.py end to end, as users run it: train, predict, score and export on KorQuAD.

One run (a module fixture, a separate process) trains a 2-layer, 32-wide BERT with the
shipped vocabulary for a few steps on the data's first two KorQuAD articles and predicts the
sixth; the tests check its files against the library: the training records are the
features of the shuffled questions, the predictions cover every question, and
eval_results.txt holds the scores of predictions.json. Bad flags are checked in-process,
and one refusal end to end.
"""

import json
import os
import random

import pytest
from test_run_classifier import TINY_CONFIG, run

import tokenization
from krbert import cli
from krbert.span import features as span_features
from krbert.span import metrics, reading
from krbert.tf_compat import tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "run_squad.py")
VOCAB = os.path.join(ROOT, "vocab", "vocab_20000.txt")
WINDOW = ["--max_seq_length=64", "--doc_stride=32", "--max_query_length=16"]


@pytest.fixture(scope="module")
def korquad_file(data_dir):
    path = os.path.join(data_dir, "korquad", "KorQuAD_v1.0_dev.json")
    if not os.path.isfile(path):
        pytest.fail("%s not found: DATA_DIR must hold korquad/" % path, pytrace=False)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, korquad_file):
    folder = tmp_path_factory.mktemp("squad")
    config = folder / "bert_config.json"
    config.write_text(json.dumps(TINY_CONFIG), encoding="utf-8")
    output = folder / "run"
    flags = ["--do_lower_case=False", "--vocab_file=%s" % VOCAB,
             "--bert_config_file=%s" % config, "--output_dir=%s" % output] + WINDOW
    run(["--do_train", "--do_predict", "--do_export", "--train_file=%s" % korquad_file,
         "--train_articles=:2", "--predict_file=%s" % korquad_file, "--predict_articles=5:6",
         "--train_batch_size=8", "--num_train_epochs=1", "--num_workers=2",
         "--n_best_size=5"] + flags, script=SCRIPT)
    return {"output": str(output), "flags": flags, "config": str(config)}


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_train_tf_record_holds_the_features_of_the_shuffled_questions(trained, korquad_file):
    examples = reading.read_squad_examples(korquad_file, True, articles=slice(0, 2)).examples
    random.Random(12345).shuffle(examples)
    tokenizer = tokenization.FullTokenizer(VOCAB, do_lower_case=False)
    expected = [record for record, _ in span_features.convert_examples_to_features(
        examples, tokenizer, span_features.SpanSettings(64, 32, 16), True, keep=False)]
    written = list(tf.compat.v1.io.tf_record_iterator(
        os.path.join(trained["output"], "train.tf_record")))
    assert written == expected


def test_predictions_nbest_and_eval_results(trained, korquad_file):
    squad = reading.read_squad_examples(korquad_file, False, articles=slice(5, 6))
    predictions = read_json(os.path.join(trained["output"], "predictions.json"))
    nbest = read_json(os.path.join(trained["output"], "nbest_predictions.json"))
    ids = [qas_id for qas_id, _ in squad.answers]
    assert list(predictions) == list(nbest) == ids
    contexts = {e.qas_id: " ".join(e.doc_tokens) for e in squad.examples}
    for qas_id in ids:
        entries = nbest[qas_id]
        assert 1 <= len(entries) <= 5
        assert [list(entry) for entry in entries] == [
            ["text", "probability", "start_logit", "end_logit"]] * len(entries)
        assert entries[0]["text"] == predictions[qas_id]
        assert abs(sum(entry["probability"] for entry in entries) - 1.0) < 1e-6
        if predictions[qas_id] == "empty":  # no valid span in the n-best: the original's
            assert len(entries) == 1          # single "empty" entry
        else:
            assert predictions[qas_id] in contexts[qas_id]  # a span of the context
    assert any(predictions[qas_id] != "empty" for qas_id in ids)  # the tiny model is barely
    # trained: where none of its n-best starts and ends makes a span, the original says "empty"
    assert not os.path.exists(os.path.join(trained["output"], "null_odds.json"))
    scores = metrics.korquad_scores(squad.answers, predictions)
    with open(os.path.join(trained["output"], "eval_results.txt"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[:4] == ["exact_match = %r" % scores["exact_match"],
                         "f1 = %r" % scores["f1"], "total = %d" % len(ids), "unanswered = 0"]
    assert lines[4].startswith("global_step = ")


def test_the_export_is_a_saved_model_with_its_settings(trained):
    version = os.path.join(trained["output"], "export", "1")
    assert os.path.isfile(os.path.join(version, "saved_model.pb"))
    settings = read_json(os.path.join(version, "assets.extra", "span.json"))
    assert (settings["max_seq_length"], settings["doc_stride"],
            settings["max_query_length"]) == (64, 32, 16)


# ---------------------------------------------------------------------------------------
# Refusals


def test_window_flags_are_checked():
    span_features.check_window(384, 128, 64)
    with pytest.raises(cli.InputError, match=r"--doc_stride=384 must be smaller than "
                                             r"--max_seq_length=384"):
        span_features.check_window(384, 384, 64)
    with pytest.raises(cli.InputError, match=r"--max_query_length=61 leaves no room for the "
                                             r"context in --max_seq_length=64"):
        span_features.check_window(64, 32, 61)


def test_a_bad_doc_stride_is_one_line(trained, korquad_file):
    code, err = run(["--do_predict", "--predict_file=%s" % korquad_file] + trained["flags"]
                    + ["--doc_stride=64"], expect_ok=False, script=SCRIPT)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: --doc_stride=64 must be smaller than --max_seq_length=64 (windows start "
        "doc_stride tokens apart; the original uses 128 with 384)")


# ---------------------------------------------------------------------------------------
# Serving the export: predict.py


def test_predict_py_serves_the_export_with_run_squads_answers(trained, korquad_file,
                                                              tmp_path):
    with open(korquad_file, encoding="utf-8") as handle:
        article = json.load(handle)["data"][5]
    lines = ["%s\t%s\n" % (qa["question"], paragraph["context"])
             for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
    source = tmp_path / "questions.tsv"
    source.write_text("".join(lines), encoding="utf-8")
    output = tmp_path / "answers.tsv"
    run(["--saved_model=%s" % os.path.join(trained["output"], "export"),
         "--input_file=%s" % source, "--output_file=%s" % output],
        script=os.path.join(ROOT, "predict.py"))
    rows = [line.split("\t") for line in output.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["question", "answer", "probability"]
    predictions = read_json(os.path.join(trained["output"], "predictions.json"))
    assert [row[1] for row in rows[1:]] == list(predictions.values())
    assert all(0.0 < float(row[2]) <= 1.0 for row in rows[1:])


def test_a_question_line_without_a_tab_is_refused():
    import io

    from krbert.span import serving
    with pytest.raises(cli.InputError, match=r"^q.tsv:2: no tab; give one "
                                             r"question<TAB>context a line$"):
        serving.read_pairs(io.BytesIO("누구?\t서울\n누구?\n".encode("utf-8")), "q.tsv")
