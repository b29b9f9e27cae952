"""From logits to answers as the original run_squad.py chooses them: get_final_text's tricky
cases (each expected text is what the original's get_final_text returns), the n-best list,
max context, lengths, duplicates and SQuAD 2.0's null answer. Set ORIGINAL_BERT_DIR (and
under TensorFlow 2 ORIGINAL_BERT_PYTHON) to also compare predictions.json,
nbest_predictions.json and null_odds.json byte for byte with the original's
write_predictions on the same windows and logits."""

import math

import pytest

from krbert.span import postprocess
from krbert.span.features import SpanFeature
from krbert.span.reading import SquadExample
from tiny_models import original_release


@pytest.mark.parametrize("pred, orig, lower, final", [
    ("서울", "서울에서", False, "서울"),  # a span inside an eojeol
    ("steve smith", "Steve Smith's", True, "Steve Smith"),
    ("1895", "(1895-1943).", False, "1895"),
    ("seoul", "SEOUL!", True, "SEOUL"),
    # lower-casing NFD-splits Hangul into jamo: the lengths differ, so the whole words
    ("seoul", "SEOUL에서", True, "SEOUL에서"),
    ("東 京", "東京大学에서", False, "東京"),  # CJK characters are split one by one
    ("cafe", "Café!", True, "Café"),  # accents stripped for the search, kept in the answer
    ("부산", "서울에서", False, "서울에서"),  # not found: the whole words
    ("서울", "\x07서울", False, "\x07서울"),  # a control character removed: lengths differ
    ("서울 에서", "서울 에서", False, "서울 에서"),
])
def test_get_final_text(pred, orig, lower, final):
    assert postprocess.get_final_text(pred, orig, lower) == final


@pytest.mark.parametrize("pred, orig, lower, why", [
    ("서울", "서울에서", False, None),
    ("부산", "서울에서", False, "not found in the basic-tokenized words '서울에서'"),
    ("seoul", "SEOUL에서", True, "7 characters without spaces, 9 after basic tokenization"),
])
def test_verbose_logging_says_why_an_answer_kept_its_whole_words(pred, orig, lower, why,
                                                                  monkeypatch):
    logged = []
    monkeypatch.setattr(postprocess.tf.logging, "info",
                        lambda message, *args: logged.append(message % args))
    quiet = postprocess.get_final_text(pred, orig, lower)
    assert logged == []
    assert postprocess.get_final_text(pred, orig, lower, verbose_logging=True) == quiet
    assert logged == ([] if why is None else
                      ["Answer %r kept as the whole words %r: %s" % (pred, orig, why)])


def feature(unique_id, index, span_index, tokens, first_word, max_context):
    """A window: [CLS] q [SEP] then context tokens from word ``first_word`` (one token a
    word, '##' pieces join the word before), then [SEP]."""
    token_to_orig_map, word = {}, first_word - 1
    for position in range(3, len(tokens) - 1):
        if not tokens[position].startswith("##"):
            word += 1
        token_to_orig_map[position] = word
    is_max = {p: p in max_context for p in token_to_orig_map}
    return SpanFeature(unique_id, index, span_index, tokens, token_to_orig_map, is_max,
                       None, None, None, None, None, False)


def logits(length, scores):
    values = [-10.0] * length
    for position, value in scores.items():
        values[position] = value
    return values


SETTINGS = postprocess.PostprocessSettings(n_best_size=20, max_answer_length=2,
                                           do_lower_case=False, version_2_with_negative=False,
                                           null_score_diff_threshold=0.0)


def two_windows():
    example = SquadExample("q1", "?", ["회의는", "서울에서", "열렸다", "부산에서도"], None, None,
                           None, False)
    first = feature(1000000000, 0, 0, ["[CLS]", "?", "[SEP]", "회의", "##는", "서울",
                                       "##에서", "[SEP]"], 0, {3, 4, 5})
    second = feature(1000000001, 0, 1, ["[CLS]", "?", "[SEP]", "서울", "##에서", "열렸다",
                                        "부산", "##에서", "##도", "[SEP]"], 1, {4, 5, 6, 7, 8})
    return example, [first, second]


def test_the_best_span_in_its_max_context_window():
    example, features = two_windows()
    results = {
        # window 0 ranks 서울 highest, but 서울 is scored in window 0 only at position 5
        1000000000: postprocess.RawResult(1000000000, logits(8, {5: 5.0, 3: 1.0}),
                                          logits(8, {5: 5.0, 4: 1.0})),
        # window 1: 서울 (3) is not its max context; 부산 ##에서 ##도 is 3 tokens > max 2
        1000000001: postprocess.RawResult(1000000001, logits(10, {3: 9.0, 6: 8.5, 5: 0.5}),
                                          logits(10, {3: 9.0, 8: 8.0, 5: 0.5, 6: 2.0})),
    }
    predictions, nbest, null_odds = postprocess.predict_answers([example], features, results,
                                                                SETTINGS)
    texts = [entry["text"] for entry in nbest["q1"]]
    # 부산 (6..6 of window 1: 8.5 + 2) outranks 서울 (5..5 of window 0: 5 + 5), which
    # outranks 열렸다 부산 (5..6: 0.5 + 2) and 회의는 (3..4 of window 0: 1 + 1)
    assert predictions["q1"] == texts[0] == "부산"
    assert texts[1:4] == ["서울", "열렸다 부산", "회의는"]
    assert len(texts) == len(set(texts))
    total = sum(entry["probability"] for entry in nbest["q1"])
    assert total == pytest.approx(1.0)
    scores = [e["start_logit"] + e["end_logit"] for e in nbest["q1"]]
    assert scores == sorted(scores, reverse=True)
    first = nbest["q1"][0]
    assert first["probability"] == pytest.approx(
        1 / sum(math.exp(s - scores[0]) for s in scores))
    assert not null_odds


def test_squad2_null_answer_against_the_threshold():
    example, features = two_windows()
    results = {
        1000000000: postprocess.RawResult(1000000000, logits(8, {0: 3.0, 5: 5.0}),
                                          logits(8, {0: 3.0, 5: 5.0})),
        1000000001: postprocess.RawResult(1000000001, logits(10, {0: 1.0, 6: 2.0}),
                                          logits(10, {0: 1.5, 6: 2.0})),
    }
    for threshold, expected in ((-8.0, ""), (0.0, "서울")):
        settings = SETTINGS._replace(version_2_with_negative=True,
                                     null_score_diff_threshold=threshold)
        predictions, nbest, null_odds = postprocess.predict_answers([example], features,
                                                                    results, settings)
        # the null score is the smallest [CLS] score over the windows: 1.0 + 1.5
        assert null_odds["q1"] == pytest.approx(2.5 - 10.0)
        assert predictions["q1"] == expected
        assert "" in [entry["text"] for entry in nbest["q1"]]


def test_no_valid_span_gives_the_original_placeholder():
    example, features = two_windows()
    results = {f.unique_id: postprocess.RawResult(f.unique_id, logits(len(f.tokens), {1: 9.0}),
                                                  logits(len(f.tokens), {1: 9.0}))
               for f in features}
    settings = SETTINGS._replace(n_best_size=1)
    predictions, nbest, _ = postprocess.predict_answers([example], features, results, settings)
    assert predictions["q1"] == "empty" and nbest["q1"][0]["probability"] == 1.0


# ---------------------------------------------------------------------------------------
# The original release (optional): the same files from the same logits

ORIGINAL_DRIVER = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
import run_squad, tokenization
input_file, vocab, logits_file, output_dir, v2 = sys.argv[2:7]
run_squad.FLAGS(["run_squad", "--version_2_with_negative=%s" % v2])
tokenizer = tokenization.FullTokenizer(vocab_file=vocab, do_lower_case=False)
examples = run_squad.read_squad_examples(input_file, is_training=False)
features = []
run_squad.convert_examples_to_features(examples, tokenizer, 96, 32, 24, False, features.append)
with open(logits_file) as handle:
    logits = json.load(handle)
results = [run_squad.RawResult(unique_id=f.unique_id, start_logits=logits[str(f.unique_id)][0],
                               end_logits=logits[str(f.unique_id)][1]) for f in features]
run_squad.write_predictions(examples, features, results, 5, 12, False,
                            output_dir + "/predictions.json", output_dir + "/nbest.json",
                            output_dir + "/null_odds.json")
'''


@pytest.mark.parametrize("v2", [False, True])
def test_same_prediction_files_as_the_original_release(data_dir, tmp_path, v2):
    import json
    import os
    import subprocess

    import numpy as np

    import tokenization
    from krbert.span import features as span_features
    from krbert.span import reading
    original, python = original_release()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    vocab = os.path.join(root, "vocab", "vocab_20000.txt")
    document = json.load(open(os.path.join(data_dir, "korquad", "KorQuAD_v1.0_dev.json"),
                              encoding="utf-8"))
    document["data"] = document["data"][:2]
    squad_path = tmp_path / "two.json"
    squad_path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    examples = reading.read_squad_examples(str(squad_path), False).examples
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
    features = [f for _, f in span_features.convert_examples_to_features(
        examples, tokenizer, span_features.SpanSettings(96, 32, 24), False)]
    rng = np.random.RandomState(3)
    logits = {str(f.unique_id): [[float(x) for x in rng.randn(96).astype(np.float32)]
                                 for _ in range(2)] for f in features}
    (tmp_path / "logits.json").write_text(json.dumps(logits), encoding="utf-8")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    done = subprocess.run([python, "-c", ORIGINAL_DRIVER, original, str(squad_path), vocab,
                           str(tmp_path / "logits.json"), str(theirs), str(v2).lower()],
                          timeout=600, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert done.returncode == 0, done.stderr[-2000:]
    results = {int(k): postprocess.RawResult(int(k), v[0], v[1]) for k, v in logits.items()}
    settings = postprocess.PostprocessSettings(5, 12, False, v2, 0.0)
    predictions, nbest, null_odds = postprocess.predict_answers(examples, features, results,
                                                                settings)
    mine = tmp_path / "mine"
    mine.mkdir()
    written = [("predictions.json", predictions), ("nbest.json", nbest)]
    if v2:
        written.append(("null_odds.json", null_odds))
    else:
        assert not (theirs / "null_odds.json").exists()
    for name, value in written:
        postprocess.write_json(str(mine / name), value)
        assert (mine / name).read_bytes() == (theirs / name).read_bytes(), name
