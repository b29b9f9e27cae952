"""KorQuAD/SQuAD features against an independent statement of the original's algorithm.

``reference_features`` below restates what the original BERT run_squad.py computes, by
brute force and in other words: windows listed by their starts, the max-context window of
a token found by scanning every window, the answer span as the first (then longest) token
span inside the answer's words that spells the answer. The hand-made cases check what
matters for a character-level Korean model (an answer inside an eojeol, "서울" in
"서울에서"), windows, truncated questions and answers outside a window; the sample's
KorQuAD articles check every feature of real text. Set ORIGINAL_BERT_DIR to a
google-research/bert checkout (and under TensorFlow 2 ORIGINAL_BERT_PYTHON to a Python with
TF 1.15) to also compare the records with the original's, record by record.
"""

import json
import os
import random
import subprocess

import pytest

import tokenization
from krbert import cli
from krbert.span import features as span_features
from krbert.span import reading
from krbert.tf_compat import tf
from tiny_models import original_release

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(ROOT, "vocab", "vocab_20000.txt")
HAND_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "서울", "##에서", "##이다", "한국",
              "##의", "수도", "##는", "회의", "열렸다", ".", "##.", "누가", "어디", "##서", "?",
              "가", "나", "다", "라", "마", "바", "사"]


# ---------------------------------------------------------------------------------------
# The independent statement


def reference_windows(num_tokens, room, stride):
    """Window starts 0, s, 2s, ... (s = min(stride, room)) until one reaches the end."""
    step = min(stride, room)
    starts = [0]
    while starts[-1] + room < num_tokens:
        starts.append(starts[-1] + step)
    return [(start, min(room, num_tokens - start)) for start in starts]


def reference_best_window(windows, position):
    scores = [(min(position - s, s + n - 1 - position) + 0.01 * n, -i)
              for i, (s, n) in enumerate(windows) if s <= position < s + n]
    return -max(scores)[1]


def reference_features(example, tokenizer, max_seq_length, stride, max_query, training):
    """Dicts of every window of ``example``, restating the original's algorithm."""
    query = tokenizer.tokenize(example.question_text)[:max_query]
    pieces = [tokenizer.tokenize(word) for word in example.doc_tokens]
    doc = [p for word in pieces for p in word]
    word_of = [w for w, word in enumerate(pieces) for _ in word]
    answer = None
    if training:
        first = sum(len(word) for word in pieces[:example.start_position])
        last = sum(len(word) for word in pieces[:example.end_position + 1]) - 1
        wanted = tokenizer.tokenize(example.orig_answer_text)
        spans = sorted(((i, j) for i in range(first, last + 1) for j in range(i, last + 1)),
                       key=lambda ij: (ij[0], -ij[1]))
        answer = next(((i, j) for i, j in spans if doc[i:j + 1] == wanted), (first, last))
    windows = reference_windows(len(doc), max_seq_length - len(query) - 3, stride)
    out = []
    for index, (start, length) in enumerate(windows):
        tokens = ["[CLS]"] + query + ["[SEP]"] + doc[start:start + length] + ["[SEP]"]
        offset = len(query) + 2
        ids = tokenizer.convert_tokens_to_ids(tokens)
        pad = max_seq_length - len(ids)
        feature = {
            "tokens": tokens, "input_ids": ids + [0] * pad,
            "input_mask": [1] * len(ids) + [0] * pad,
            "segment_ids": [0] * offset + [1] * (length + 1) + [0] * pad,
            "token_to_orig_map": {offset + k: word_of[start + k] for k in range(length)},
            "token_is_max_context": {offset + k: reference_best_window(windows, start + k)
                                     == index for k in range(length)},
        }
        if training:
            inside = start <= answer[0] and answer[1] < start + length
            feature["start_position"] = answer[0] - start + offset if inside else 0
            feature["end_position"] = answer[1] - start + offset if inside else 0
        out.append(feature)
    return out


def as_dicts(features, training):
    keys = ["tokens", "input_ids", "input_mask", "segment_ids", "token_to_orig_map",
            "token_is_max_context"] + (["start_position", "end_position"] if training else [])
    return [{key: getattr(f, key) for key in keys} for f in features]


# ---------------------------------------------------------------------------------------
# Hand-made cases


@pytest.fixture(scope="module")
def hand_tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(HAND_VOCAB) + "\n", encoding="utf-8")
    return tokenization.FullTokenizer(str(path), do_lower_case=False)


def squad_file(folder, context, qas, name="train.json"):
    path = folder / name
    document = {"version": "test", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": qas}]}]}
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return str(path)


def qa(qid, question, text, start):
    return {"id": qid, "question": question, "answers": [{"text": text, "answer_start": start}]}


def convert(examples, tokenizer, max_seq_length, stride, max_query, training, workers=1):
    settings = span_features.SpanSettings(max_seq_length, stride, max_query)
    return list(span_features.convert_examples_to_features(
        examples, tokenizer, settings, training, num_workers=workers))


def test_an_answer_inside_an_eojeol_is_narrowed_to_its_tokens(tmp_path, hand_tokenizer):
    context = "한국의 수도는 서울이다. 회의는 서울에서 열렸다."
    start = context.index("서울에서")
    path = squad_file(tmp_path, context, [qa("q1", "어디서 회의가?", "서울", start)])
    examples = reading.read_squad_examples(path, is_training=True).examples
    assert examples[0].doc_tokens[examples[0].start_position] == "서울에서"
    (record, feature), = convert(examples, hand_tokenizer, 32, 8, 8, True)
    # [CLS] 어디 ##서 [UNK] ? [SEP] 한국 ##의 수도 ##는 서울 ##이다 . 회의 ##는 서울 ##에서 ...
    assert feature.tokens[:6] == ["[CLS]", "어디", "##서", "[UNK]", "?", "[SEP]"]
    assert feature.tokens[15:17] == ["서울", "##에서"]
    assert (feature.start_position, feature.end_position) == (15, 15)
    assert feature.token_to_orig_map[15] == feature.token_to_orig_map[16] == 4  # 서울에서
    assert feature.unique_id == 1000000000
    parsed = tf.train.Example.FromString(record).features.feature
    assert list(parsed["start_positions"].int64_list.value) == [15]
    assert list(parsed["input_ids"].int64_list.value) == feature.input_ids
    assert as_dicts([feature], True) == reference_features(examples[0], hand_tokenizer, 32, 8,
                                                           8, True)


def test_windows_max_context_and_answers_outside_a_window(tmp_path, hand_tokenizer):
    words = ["가", "나", "다", "라", "마", "바", "사"] * 4
    context = " ".join(words)
    qas = [qa("q%d" % i, "누가 " * (i + 1), words[i], 2 * i) for i in range(0, 28, 3)]
    path = squad_file(tmp_path, context, qas)
    examples = reading.read_squad_examples(path, is_training=True).examples
    for max_seq_length, stride, max_query in ((16, 3, 4), (16, 20, 2), (20, 5, 1), (64, 2, 3)):
        results = convert(examples, hand_tokenizer, max_seq_length, stride, max_query, True)
        assert [f.unique_id for _, f in results] == list(range(1000000000,
                                                               1000000000 + len(results)))
        for index, example in enumerate(examples):
            mine = [f for _, f in results if f.example_index == index]
            assert [f.doc_span_index for f in mine] == list(range(len(mine)))
            assert as_dicts(mine, True) == reference_features(
                example, hand_tokenizer, max_seq_length, stride, max_query, True)
            for position in range(len(words)):  # each token is scored in one window only
                owners = [f for f in mine for t, w in f.token_to_orig_map.items()
                          if w == position and f.token_is_max_context[t]]
                assert len(owners) == 1
    several = convert(examples, hand_tokenizer, 16, 3, 4, True)
    assert any(f.start_position == 0 for _, f in several)  # the answer is in another window
    assert max(len(f.tokens) for _, f in several) == 16


def test_the_question_is_cut_to_max_query_length(tmp_path, hand_tokenizer):
    path = squad_file(tmp_path, "서울에서 회의", [qa("q", "누가 누가 누가 누가", "회의", 5)])
    examples = reading.read_squad_examples(path, is_training=False).examples
    (_, feature), = convert(examples, hand_tokenizer, 16, 4, 2, False)
    assert feature.tokens == ["[CLS]", "누가", "누가", "[SEP]", "서울", "##에서", "회의", "[SEP]"]
    assert feature.start_position is None
    assert feature.segment_ids[:9] == [0, 0, 0, 0, 1, 1, 1, 1, 0]


def test_an_answer_that_does_not_match_its_context_is_skipped_and_counted(tmp_path):
    context = "한국의 수도는 서울이다."
    qas = [qa("good", "?", "서울", 8), qa("bad", "?", "부산", 8), qa("off", "?", "서울", 99)]
    read = reading.read_squad_examples(squad_file(tmp_path, context, qas), is_training=True)
    assert [e.qas_id for e in read.examples] == ["good"] and read.num_skipped == 2
    everything = reading.read_squad_examples(squad_file(tmp_path, context, qas), False)
    assert [e.qas_id for e in everything.examples] == ["good", "bad", "off"]
    assert everything.answers == [("good", ["서울"]), ("bad", ["부산"]), ("off", ["서울"])]


@pytest.mark.parametrize("document, message", [
    ("[1, 2]", "not SQuAD-shaped: it needs a top-level object with a \"data\" list"),
    ('{"data": [{"title": "x"}]}', "data[0] has no \"paragraphs\" list"),
    ('{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "q7"}]}]}]}',
     "data[0].paragraphs[0].qas[0] needs an \"id\" and a \"question\" string"),
    ('{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "q7", "question": "?", '
     '"answers": [{"text": "x"}]}]}]}]}', "question q7 has an answer without"),
    ("{not json", "is not JSON"),
])
def test_a_file_that_is_not_squad_shaped_is_refused_in_one_line(tmp_path, document, message):
    path = tmp_path / "bad.json"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(cli.InputError) as raised:
        reading.read_squad_examples(str(path), is_training=False)
    assert message in str(raised.value) and str(path) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_training_needs_one_answer_per_question(tmp_path):
    qas = [{"id": "q9", "question": "?", "answers": [{"text": "a", "answer_start": 0}] * 2}]
    with pytest.raises(cli.InputError, match="question q9 has 2 answers"):
        reading.read_squad_examples(squad_file(tmp_path, "a b", qas), is_training=True)


def test_article_ranges():
    assert reading.parse_article_range("train_articles", ":100") == slice(None, 100)
    assert reading.parse_article_range("train_articles", "100:") == slice(100, None)
    assert reading.parse_article_range("train_articles", "") == slice(None)
    with pytest.raises(cli.InputError, match="--predict_articles=1-2: give START:END"):
        reading.parse_article_range("predict_articles", "1-2")


# ---------------------------------------------------------------------------------------
# Real text: the sample's KorQuAD articles with the shipped vocabulary


@pytest.fixture(scope="module")
def korquad(data_dir):
    path = os.path.join(data_dir, "korquad", "KorQuAD_v1.0_dev.json")
    if not os.path.isfile(path):
        pytest.fail("%s not found: DATA_DIR must hold korquad/" % path, pytrace=False)
    return path


@pytest.mark.parametrize("training", [True, False])
def test_korquad_features_equal_the_reference(korquad, training):
    tokenizer = tokenization.FullTokenizer(VOCAB, do_lower_case=False)
    examples = reading.read_squad_examples(korquad, training, articles=slice(0, 3)).examples
    results = convert(examples, tokenizer, 128, 48, 24, training)
    assert len(results) > len(examples)  # long contexts take several windows
    for index, example in enumerate(examples):
        mine = [f for _, f in results if f.example_index == index]
        assert as_dicts(mine, training) == reference_features(example, tokenizer, 128, 48, 24,
                                                              training)


def test_workers_give_the_same_records_in_the_same_order(korquad):
    tokenizer = tokenization.FullTokenizer(VOCAB, do_lower_case=False)
    examples = reading.read_squad_examples(korquad, True, articles=slice(0, 2)).examples
    random.Random(12345).shuffle(examples)
    settings = span_features.SpanSettings(128, 64, 32)
    one = list(span_features.convert_examples_to_features(examples, tokenizer, settings, True,
                                                          keep=False))
    two = list(span_features.convert_examples_to_features(examples, tokenizer, settings, True,
                                                          num_workers=2, keep=False,
                                                          block_size=7))
    assert [r for r, _ in one] == [r for r, _ in two]
    assert [f.unique_id for _, f in two] == list(range(1000000000, 1000000000 + len(two)))
    for record, _ in one[:20]:  # the unique id written in place is the parsed one
        parsed = tf.train.Example.FromString(record)
        assert parsed.SerializeToString(deterministic=True) == record


# ---------------------------------------------------------------------------------------
# The original release (optional)

ORIGINAL_DRIVER = r'''
import os, random, sys
sys.path.insert(0, sys.argv[1])
import run_squad, tokenization
run_squad.FLAGS(["run_squad"])
input_file, vocab, output, training = sys.argv[2:6]
training = training == "1"
tokenizer = tokenization.FullTokenizer(vocab_file=vocab, do_lower_case=False)
examples = run_squad.read_squad_examples(input_file, is_training=training)
if training:
    random.Random(12345).shuffle(examples)
writer = run_squad.FeatureWriter(output, is_training=training)
run_squad.convert_examples_to_features(examples, tokenizer, 192, 64, 32, training,
                                       writer.process_feature)
writer.close()
'''


@pytest.mark.parametrize("training", [True, False])
def test_same_records_as_the_original_release(korquad, tmp_path, training):
    original, python = original_release()
    theirs_path = str(tmp_path / "original.tf_record")
    done = subprocess.run([python, "-c", ORIGINAL_DRIVER, original, korquad, VOCAB,
                           theirs_path, "1" if training else "0"], cwd=str(tmp_path),
                          timeout=900, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert done.returncode == 0, done.stderr[-2000:]
    tokenizer = tokenization.FullTokenizer(VOCAB, do_lower_case=False)
    examples = reading.read_squad_examples(korquad, training).examples
    if training:
        random.Random(12345).shuffle(examples)
    mine = [r for r, _ in span_features.convert_examples_to_features(
        examples, tokenizer, span_features.SpanSettings(192, 64, 32), training, keep=False)]
    # The original's bytes order the fields as protobuf's hash map happens to (it changes
    # between runs); its records are compared in their deterministic serialization.
    theirs = [tf.train.Example.FromString(r).SerializeToString(deterministic=True)
              for r in tf.compat.v1.io.tf_record_iterator(theirs_path)]
    assert len(theirs) == len(mine) > len(examples)
    assert theirs == mine
