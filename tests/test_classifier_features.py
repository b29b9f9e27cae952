"""The feature cache and the input pipeline of the classifier."""

import json
import os

import numpy as np
import pytest
from test_classifier_tasks import NSMC_HEADER, write

from krbert.classifier import features as cf
from krbert.classifier import tasks as ct
from krbert.tf_compat import tf


class WordTokenizer(object):
    """Whitespace tokens; ids by first appearance. Counts calls."""

    def __init__(self):
        self.vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
        self.calls = 0

    def tokenize(self, text):
        self.calls += 1
        return text.split()

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab.setdefault(t, len(self.vocab)) for t in tokens]


SIGNATURE = {"vocab_sha256": "x", "tokenizer": "wordpiece", "subchar": False,
             "do_lower_case": False}


# ---------------------------------------------------------------------------------------
# Feature cache


def nsmc_split(tmp_path, rows):
    write(tmp_path / "data" / "dev.tsv",
          NSMC_HEADER + "".join("%d\t%s\t%d\n" % (i + 1, t, i % 2) for i, t in enumerate(rows)))
    return ct.get_processor("nsmc").read_split(str(tmp_path / "data"), "dev")


def read_records(path):
    rows = []
    for raw in tf.io.tf_record_iterator(path):
        feature = tf.train.Example.FromString(raw).features.feature
        rows.append((feature["example_index"].int64_list.value[0],
                     list(feature["input_ids"].int64_list.value),
                     feature["label_ids"].int64_list.value[0]))
    return rows


TEXTS = ["a b c d e", "a", "", "b c", "a b c d e f g h i j k"]


def test_features_are_cls_tokens_sep_cut_to_max_seq_length(tmp_path):
    split = nsmc_split(tmp_path, TEXTS)
    tokenizer = WordTokenizer()
    path, meta = cf.build_feature_cache(ct.get_processor("nsmc"), split, tokenizer, SIGNATURE,
                                        8, str(tmp_path / "cache"), sort_by_length=False)
    rows = read_records(path)
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    assert [len(r[1]) for r in rows] == [7, 3, 2, 4, 8]
    assert all(r[1][0] == 2 and r[1][-1] == 3 for r in rows)
    assert [r[2] for r in rows] == [0, 1, 0, 1, 0]
    assert meta["num_examples"] == 5 and meta["num_truncated"] == 1


def test_sorted_cache_keeps_each_example_index(tmp_path):
    split = nsmc_split(tmp_path, TEXTS)
    path, _ = cf.build_feature_cache(ct.get_processor("nsmc"), split, WordTokenizer(),
                                     SIGNATURE, 16, str(tmp_path / "cache"),
                                     sort_by_length=True)
    rows = read_records(path)
    assert [len(r[1]) for r in rows] == sorted(len(r[1]) for r in rows)
    assert [r[0] for r in rows] == [2, 1, 3, 0, 4]


def test_second_build_hits_the_cache_and_any_key_change_misses(tmp_path):
    split = nsmc_split(tmp_path, TEXTS)
    processor = ct.get_processor("nsmc")
    cache = str(tmp_path / "cache")
    first = WordTokenizer()
    path, _ = cf.build_feature_cache(processor, split, first, SIGNATURE, 16, cache, True)
    assert first.calls == 5
    again = WordTokenizer()
    assert cf.build_feature_cache(processor, split, again, SIGNATURE, 16, cache, True)[0] == path
    assert again.calls == 0
    assert not [f for f in os.listdir(cache) if ".tmp-" in f]

    changed = [
        (dict(SIGNATURE, vocab_sha256="y"), 16),
        (dict(SIGNATURE, do_lower_case=True), 16),
        (dict(SIGNATURE, tokenizer="bidirectional"), 16),
        (SIGNATURE, 32),
    ]
    for signature, max_len in changed:
        tokenizer = WordTokenizer()
        other, _ = cf.build_feature_cache(processor, split, tokenizer, signature, max_len,
                                          cache, True)
        assert other != path and tokenizer.calls == 5
    # Editing the data file changes the key too.
    edited = nsmc_split(tmp_path, TEXTS + ["new row"])
    tokenizer = WordTokenizer()
    assert cf.build_feature_cache(processor, edited, tokenizer, SIGNATURE, 16, cache,
                                  True)[0] != path
    assert tokenizer.calls == 6
    with open(path.replace(".tf_record", ".json")) as handle:
        assert json.load(handle)["key_fields"]["max_seq_length"] == 16


# ---------------------------------------------------------------------------------------
# Input pipeline


def run_batches(input_fn, batch_size, limit=100):
    with tf.Graph().as_default():
        dataset = input_fn({"batch_size": batch_size})
        next_batch = tf.data.make_one_shot_iterator(dataset).get_next()
        batches = []
        with tf.Session() as session:
            try:
                while len(batches) < limit:
                    batches.append(session.run(next_batch))
            except tf.errors.OutOfRangeError:
                pass
    return batches, dataset


def cached(tmp_path, texts, sort_by_length=True):
    split = nsmc_split(tmp_path, texts)
    path, meta = cf.build_feature_cache(ct.get_processor("nsmc"), split, WordTokenizer(),
                                        SIGNATURE, 16, str(tmp_path / "cache"), sort_by_length)
    return path, meta["num_examples"]


def test_bucketed_eval_batches_are_padded_to_their_longest_example(tmp_path):
    path, n = cached(tmp_path, TEXTS)
    batches, _ = run_batches(cf.make_input_fn(path, 16, is_training=False,
                                              bucket_by_length=True, drop_remainder=False), 2)
    assert [b["input_ids"].shape for b in batches] == [(2, 3), (2, 7), (1, 13)]
    assert batches[0]["input_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert batches[0]["segment_ids"].sum() == 0
    indexes = np.concatenate([b["example_index"] for b in batches])
    assert sorted(indexes.tolist()) == list(range(n))


def test_fixed_length_batches_for_tpu_are_padded_with_fake_examples(tmp_path):
    path, n = cached(tmp_path, TEXTS)
    input_fn = cf.make_input_fn(path, 16, is_training=False, bucket_by_length=False,
                                drop_remainder=True, num_examples=n, pad_to_batch=True)
    batches, dataset = run_batches(input_fn, 4)
    assert [b["input_ids"].shape for b in batches] == [(4, 16), (4, 16)]
    real = np.concatenate([b["is_real_example"] for b in batches])
    assert real.tolist() == [1] * 5 + [0] * 3
    shapes = tf.data.get_output_shapes(dataset)
    assert shapes["input_ids"].as_list() == [4, 16]  # static: what TPUs need


def test_bucketed_training_batches_are_full_and_of_similar_length(tmp_path):
    texts = [" ".join(["w"] * (1 + i % 12)) for i in range(60)]
    path, _ = cached(tmp_path, texts, sort_by_length=False)
    input_fn = cf.make_input_fn(path, 16, is_training=True, bucket_by_length=True,
                                drop_remainder=True, seed=1)
    batches, _ = run_batches(input_fn, 4, limit=20)
    boundaries = cf.bucket_boundaries(16)
    for batch in batches:
        assert batch["input_ids"].shape[0] == 4
        lengths = batch["input_mask"].sum(axis=1)
        # All lengths in one batch fall in the same bucket.
        buckets = {sum(1 for b in boundaries if length > b) for length in lengths}
        assert len(buckets) == 1
        assert batch["input_ids"].shape[1] == lengths.max()


def test_collect_predictions_restores_input_order_and_skips_padding():
    results = [
        {"probabilities": [0.1, 0.9], "example_index": 2, "is_real_example": 1},
        {"probabilities": [0.5, 0.5], "example_index": -1, "is_real_example": 0},
        {"probabilities": [0.8, 0.2], "example_index": 0, "is_real_example": 1},
        {"probabilities": [0.3, 0.7], "example_index": 1, "is_real_example": 1},
    ]
    probabilities = cf.collect_predictions(iter(results), 3)
    assert probabilities.tolist() == [[0.8, 0.2], [0.3, 0.7], [0.1, 0.9]]
    with pytest.raises(RuntimeError, match="missing for 1"):
        cf.collect_predictions(iter(results), 4)
    with pytest.raises(RuntimeError, match="repeated for 1"):
        cf.collect_predictions(iter(results + results[:1]), 3)
