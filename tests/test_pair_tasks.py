"""Sentence pairs and scores: features against the original BERT, the pair and score tasks
of the registry (KORNLI, KORSTS, KLUE_NLI, KLUE_STS) and their refusals."""

import json
import os

import numpy as np
import pytest
from test_classifier_features import SIGNATURE, WordTokenizer, read_records, run_batches

import tokenization
from conftest import ROOT
from krbert import cli
from krbert.classifier import features as cf
from krbert.classifier import metrics
from krbert.classifier import tasks as ct
from krbert.tf_compat import tf

ORIGINAL = os.path.join(ROOT, "tests", "fixtures", "original_pair_features.json")
STS_HEADER = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------
# Features


def test_pair_features_equal_the_original_berts_convert_single_example():
    with open(ORIGINAL, encoding="utf-8") as handle:
        original = json.load(handle)
    tokenizer = tokenization.FullTokenizer(os.path.join(ROOT, "vocab", "vocab_20000.txt"),
                                           do_lower_case=False)
    cut = 0
    for max_seq_length, index, input_ids, segment_ids in original["features"]:
        text_a, text_b = original["pairs"][index]
        example = ct.InputExample(str(index), text_a, None, 0, text_b)
        ids, segments, truncated = cf.pair_to_ids(example, tokenizer, max_seq_length)
        assert (ids, segments) == (input_ids, segment_ids), (max_seq_length, index)
        cut += truncated
    assert 0 < cut < len(original["features"])  # both cut and whole pairs were compared


def test_truncate_pair_drops_from_the_longer_list_and_from_b_on_a_tie():
    a, b = list("abcdef"), list("xy")
    cf.truncate_pair(a, b, 5)
    assert (a, b) == (list("abc"), list("xy"))
    a, b = list("abc"), list("xyz")
    cf.truncate_pair(a, b, 4)
    assert (a, b) == (list("ab"), list("xy"))
    a, b = list("abc"), list("xyz")
    cf.truncate_pair(a, b, 5)
    assert (a, b) == (list("abc"), list("xy"))


def test_a_single_sentence_record_keeps_the_cache_format_2_bytes():
    old = tf.train.Example(features=tf.train.Features(feature={
        "input_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[2, 7, 3])),
        "label_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
        "example_index": tf.train.Feature(int64_list=tf.train.Int64List(value=[4])),
    }))
    new = tf.train.Example.FromString(cf.feature_record(4, [2, 7, 3], 1))
    # Map order in the serialized bytes is protobuf's (TF 1.15's varies between calls): the
    # deterministic form compares every byte of the content.
    assert new.SerializeToString(deterministic=True) == old.SerializeToString(deterministic=True)
    assert cf.CACHE_FORMAT == 2


def kornli_dev(tmp_path, rows):
    write(tmp_path / "data" / "xnli.dev.ko.tsv", "sentence1\tsentence2\tgold_label\n" +
          "".join("%s\t%s\t%s\n" % row for row in rows))
    return ct.get_processor("kornli").read_split(str(tmp_path / "data"), "dev")


def test_pair_records_carry_segment_ids_through_the_input_pipeline(tmp_path):
    split = kornli_dev(tmp_path, [("a b c", "d e", "neutral"), ("a", "b c d e f", "entailment"),
                                  ('"a" b', "c", "contradiction")])
    assert split.examples[2].text == '"a" b'  # KorNLI's quotes are text, not CSV quoting
    processor = ct.get_processor("kornli")
    path, meta = cf.build_feature_cache(processor, split, WordTokenizer(), SIGNATURE, 7,
                                        str(tmp_path / "cache"), sort_by_length=False)
    assert meta["num_truncated"] == 2  # 3 + 2 and 1 + 5 tokens, 4 fit
    assert [r[2] for r in read_records(path)] == [1, 0, 2]
    batches, _ = run_batches(cf.make_input_fn(path, 7, is_training=False,
                                              bucket_by_length=True, drop_remainder=False), 3)
    batch = batches[0]
    assert batch["segment_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1],
                                             [0, 0, 0, 0, 1, 1, 0]]
    assert batch["input_mask"].tolist()[2] == [1, 1, 1, 1, 1, 1, 0]


def test_score_records_carry_the_score_as_a_float(tmp_path):
    write(tmp_path / "sts-dev.tsv", STS_HEADER + "g\tf\ty\t1\t4.750\ta b\tc\n"
          "g\tf\ty\t2\t0\td\te f\n")
    processor = ct.get_processor("korsts")
    split = processor.read_split(str(tmp_path), "dev")
    assert [e.label for e in split.examples] == [4.75, 0.0]
    path, _ = cf.build_feature_cache(processor, split, WordTokenizer(), SIGNATURE, 16,
                                     str(tmp_path / "cache"), sort_by_length=False)
    batches, _ = run_batches(cf.make_input_fn(path, 16, is_training=False,
                                              bucket_by_length=True, drop_remainder=False), 2)
    assert batches[0]["label_values"].tolist() == [4.75, 0.0]


# ---------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize("score, what", [("high", "high"), ("5.5", "5.5"), ("-1", "-1"),
                                         ("nan", "nan")])
def test_a_bad_score_names_file_line_and_range(tmp_path, score, what):
    write(tmp_path / "sts-dev.tsv", STS_HEADER + "g\tf\ty\t1\t3\ta\tb\n"
          "g\tf\ty\t2\t%s\ta\tb\n" % score)
    with pytest.raises(cli.InputError) as error:
        ct.get_processor("korsts").read_split(str(tmp_path), "dev")
    assert str(error.value).startswith("%s:3: score '%s' (column 'score') is not a number "
                                       "from 0 to 5" % (tmp_path / "sts-dev.tsv", what))


def test_a_pair_file_with_one_text_column_is_refused_from_its_header(tmp_path):
    write(tmp_path / "xnli.test.ko.tsv", "sentence1\tgold_label\na\tneutral\n")
    with pytest.raises(cli.InputError, match=r"xnli.test.ko.tsv:1: the header line must name "
                                             r"the columns sentence1, sentence2, gold_label "
                                             r"\(missing sentence2\)"):
        ct.get_processor("kornli").read_split(str(tmp_path), "test")


# ---------------------------------------------------------------------------------------
# The registry on the real files (the sample, or the full data with DATA_DIR)


def test_kornli_and_korsts_read_the_published_files(data_dir):
    kornli = ct.get_processor("KORNLI")
    for split in ("train", "dev", "test"):
        read = kornli.read_split(os.path.join(data_dir, "kornli"), split)
        assert read.has_labels and all(e.text and e.text_b for e in read.examples)
        assert {e.label for e in read.examples} == set(kornli.labels)
    assert os.path.basename(kornli.find_file(os.path.join(data_dir, "kornli"), "test")) == \
        "xnli.test.ko.tsv"
    korsts = ct.get_processor("korsts")
    assert korsts.is_regression and korsts.headline_metric == "spearman"
    for split in ("train", "dev", "test"):
        scores = [e.label for e in korsts.read_split(data_dir, split).examples]
        assert 0.0 <= min(scores) < max(scores) <= 5.0


@pytest.mark.parametrize("task, headline", [("klue_nli", "accuracy"), ("klue_sts", "pearson")])
def test_klue_carves_dev_into_disjoint_train_and_held_out_blocks(data_dir, task, headline):
    processor = ct.get_processor(task)
    assert processor.headline_metric == headline
    folder = os.path.join(data_dir, "klue")
    train = processor.read_split(folder, "train")
    held_out = processor.read_split(folder, "dev")
    with open(held_out.path, encoding="utf-8") as handle:
        entries = json.load(handle)
    guids = [e.guid for e in train.examples] + [e.guid for e in held_out.examples]
    assert sorted(guids) == sorted(entry["guid"] for entry in entries)
    assert [e.line for e in held_out.examples][:10] == list(range(41, 51))
    assert all(((e.line - 1) // 10) % 5 != 4 for e in train.examples)
    assert len(held_out.examples) == sum(1 for i in range(len(entries)) if (i // 10) % 5 == 4)
    assert held_out.path == train.path and train.has_labels


def test_regression_metrics_are_mean_squared_error_and_the_correlations():
    rng = np.random.RandomState(0)
    labels = rng.uniform(0, 5, 50)
    scores = labels + rng.normal(0, 1, 50)
    report = metrics.regression_report(labels, scores.reshape(-1, 1))
    assert report["loss"] == pytest.approx(np.mean((labels - scores) ** 2))
    assert report["pearson"] == pytest.approx(np.corrcoef(labels, scores)[0, 1])
    ranks = [np.argsort(np.argsort(v)) for v in (labels, scores)]
    assert report["spearman"] == pytest.approx(np.corrcoef(*ranks)[0, 1])
    assert metrics.regression_report(labels, np.ones(50))["pearson"] == 0.0
