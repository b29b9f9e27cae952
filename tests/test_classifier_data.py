"""Task readers, the registry, the feature cache and the input pipeline."""

import json
import os

import numpy as np
import pytest

import classifier_data as cd
import cli
from tf_compat import tf

NSMC_HEADER = "id\tdocument\tlabel\n"
HATE_HEADER = "comments\tcontain_gender_bias\tbias\thate\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


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
# Readers


def test_nsmc_restores_double_quoted_documents_and_keeps_empty_ones(tmp_path):
    # The official files quote a document holding a double quote twice.
    write(tmp_path / "train.tsv", NSMC_HEADER +
          '1\t"""완전 ... """"아빠.아빠."""" ㅋㅎㅎ"""\t1\n'
          "2\t\t0\n"
          "3\t그냥 평범\t0\n"
          '4\t"""""""결혼은 현실"""" 성현아."""\t0\n')
    processor = cd.get_processor("NSMC")
    split = processor.read_split(str(tmp_path), "train")
    texts = [e.text for e in split.examples]
    assert texts == ['완전 ... "아빠.아빠." ㅋㅎㅎ', "", "그냥 평범", '"결혼은 현실" 성현아.']
    assert [e.guid for e in split.examples] == ["1", "2", "3", "4"]
    assert [e.label for e in split.examples] == ["1", "0", "0", "0"]
    assert [e.line for e in split.examples] == [2, 3, 4, 5]
    assert split.has_labels
    assert cd.log_split(processor, split) == 1  # the empty document is counted and kept


def test_nsmc_accepts_the_official_file_names(tmp_path):
    write(tmp_path / "ratings_train.txt", NSMC_HEADER + "1\t좋다\t1\n")
    split = cd.get_processor("nsmc").read_split(str(tmp_path), "train")
    assert split.path.endswith("ratings_train.txt") and len(split.examples) == 1


def test_data_dir_may_be_the_parent_of_the_task_folder(tmp_path):
    write(tmp_path / "nsmc" / "dev.tsv", NSMC_HEADER + "1\t좋다\t1\n")
    split = cd.get_processor("nsmc").read_split(str(tmp_path), "dev")
    assert len(split.examples) == 1


def test_a_row_with_the_wrong_column_count_names_file_line_and_row(tmp_path):
    path = write(tmp_path / "train.tsv", NSMC_HEADER + "1\t좋다\t1\n2\t나쁨 0\n")
    with pytest.raises(cli.InputError) as error:
        cd.get_processor("nsmc").read_split(str(tmp_path), "train")
    message = str(error.value)
    assert message.startswith("%s:3: expected 3 tab-separated columns" % path)
    assert "found 2" in message and "나쁨 0" in message


def test_an_unknown_label_names_file_line_and_row(tmp_path):
    path = write(tmp_path / "train.tsv", NSMC_HEADER + "1\t좋다\t1\n2\t별로\t5\n")
    with pytest.raises(cli.InputError) as error:
        cd.get_processor("nsmc").read_split(str(tmp_path), "train")
    assert str(error.value).startswith("%s:3: label '5' is not one of 0, 1" % path)


def test_a_missing_file_names_what_was_expected(tmp_path):
    with pytest.raises(cli.InputError) as error:
        cd.get_processor("nsmc").read_split(str(tmp_path), "train")
    assert "train.tsv or ratings_train.txt" in str(error.value)
    assert str(tmp_path) in str(error.value)
    with pytest.raises(cli.InputError, match="test.no_label.tsv"):
        cd.get_processor("hate").read_split(str(tmp_path), "test", need_labels=False)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes((NSMC_HEADER + "1\t좋다\t1\n").encode("utf-8") + b"2\t\xed\xa0\x80\t0\n")
    with pytest.raises(cli.InputError, match=r"train.tsv:3: not valid UTF-8"):
        cd.get_processor("nsmc").read_split(str(tmp_path), "train")


def test_a_folder_where_the_split_file_belongs(tmp_path):
    (tmp_path / "train.tsv").mkdir()
    with pytest.raises(cli.InputError, match=r"train.tsv: is a folder, not a file"):
        cd.get_processor("nsmc").read_split(str(tmp_path), "train")


def test_a_missing_column_is_reported_from_the_header(tmp_path):
    path = write(tmp_path / "dev.tsv", "id\tdocument\n1\t좋다\n")
    with pytest.raises(cli.InputError, match="%s:1: .*missing label" % path):
        cd.get_processor("nsmc").read_split(str(tmp_path), "dev")
    # Prediction does not need labels.
    split = cd.get_processor("nsmc").read_split(str(tmp_path), "dev", need_labels=False)
    assert not split.has_labels and split.examples[0].label is None


def test_task_names_are_case_insensitive_and_unknown_ones_list_the_tasks():
    assert cd.get_processor("Nsmc").name == "nsmc"
    assert cd.get_processor("HATE").labels == ("none", "offensive", "hate")
    with pytest.raises(cli.InputError, match="NSMC, HATE|HATE, NSMC"):
        cd.get_processor("cola")
    with pytest.raises(cli.InputError, match="--hate_label"):
        cd.get_processor("hate", hate_label="race")


@pytest.mark.parametrize("kind,labels", [
    ("hate", ["hate", "none", "offensive"]),
    ("bias", ["others", "none", "none"]),
    ("gender", ["False", "False", "False"]),
])
def test_hate_label_variants(tmp_path, kind, labels):
    write(tmp_path / "train.tsv", HATE_HEADER +
          "(현재 호텔주인 심정) 아18\tFalse\tothers\thate\n"
          '"노래""대단한 너""였어요"\tFalse\tnone\tnone\n'
          "지현우 나쁜놈\tFalse\tnone\toffensive\n")
    processor = cd.get_processor("hate", hate_label=kind)
    split = processor.read_split(str(tmp_path), "train")
    assert [e.label for e in split.examples] == labels
    assert split.examples[1].text == '노래"대단한 너"였어요'
    assert [e.guid for e in split.examples] == ["1", "2", "3"]
    assert processor.tag == "hate-%s" % kind


def test_hate_rejects_a_label_outside_the_chosen_set(tmp_path):
    path = write(tmp_path / "dev.tsv", HATE_HEADER + "댓글\tmaybe\tnone\tnone\n")
    with pytest.raises(cli.InputError, match="%s:2: label 'maybe'" % path):
        cd.get_processor("hate", hate_label="gender").read_split(str(tmp_path), "dev")


# ---------------------------------------------------------------------------------------
# The real data (reading only)


def data_rows(path):
    """Lines of a file less its header."""
    with open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1


def test_real_nsmc_splits(data_dir, is_full_data):
    """Every row of each split is read (on the full data: the published sizes), the three
    empty test reviews are kept and doubly quoted ones restored."""
    processor = cd.get_processor("NSMC")
    sizes, empties, expected = {}, {}, {}
    for split_name in ("train", "dev", "test"):
        split = processor.read_split(os.path.join(data_dir, "nsmc"), split_name)
        sizes[split_name] = len(split.examples)
        expected[split_name] = data_rows(split.path)
        empties[split_name] = cd.log_split(processor, split)
        assert {e.label for e in split.examples} == {"0", "1"}
        if split_name == "test":
            by_id = {e.guid: e.text for e in split.examples}
    if is_full_data:
        assert expected == {"train": 130000, "dev": 20000, "test": 50000}
    assert sizes == expected
    assert empties["test"] == 3
    assert by_id["5494222"].startswith('"결혼은 현실이에요 징징징" 성현아')
    assert not any(t.startswith('"""') for t in by_id.values())


@pytest.mark.parametrize("kind,train_counts", [
    ("hate", {"none": 3486, "offensive": 2499, "hate": 1911}),
    ("bias", {"none": 5148, "gender": 1232, "others": 1516}),
    ("gender", {"False": 6664, "True": 1232}),
])
def test_real_hate_splits(data_dir, is_full_data, kind, train_counts):
    """Every row is read with a label of the chosen set (on the full data: the published
    sizes and label counts); the test file has no labels."""
    processor = cd.get_processor("hate", hate_label=kind)
    train = processor.read_split(data_dir, "train")
    dev = processor.read_split(data_dir, "dev")
    test = processor.read_split(data_dir, "test", need_labels=False)
    sizes = tuple(len(split.examples) for split in (train, dev, test))
    assert sizes == tuple(data_rows(split.path) for split in (train, dev, test))
    counts = {}
    for example in train.examples:
        counts[example.label] = counts.get(example.label, 0) + 1
    if is_full_data:
        assert sizes == (7896, 471, 974)
        assert counts == train_counts
    else:
        assert set(counts) == set(train_counts)  # every label occurs in the sample
    assert not test.has_labels and test.examples[0].label is None
    assert test.path.endswith("test.no_label.tsv")


# ---------------------------------------------------------------------------------------
# Feature cache


def nsmc_split(tmp_path, rows):
    write(tmp_path / "data" / "dev.tsv",
          NSMC_HEADER + "".join("%d\t%s\t%d\n" % (i + 1, t, i % 2) for i, t in enumerate(rows)))
    return cd.get_processor("nsmc").read_split(str(tmp_path / "data"), "dev")


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
    path, meta = cd.build_feature_cache(cd.get_processor("nsmc"), split, tokenizer, SIGNATURE,
                                        8, str(tmp_path / "cache"), sort_by_length=False)
    rows = read_records(path)
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    assert [len(r[1]) for r in rows] == [7, 3, 2, 4, 8]
    assert all(r[1][0] == 2 and r[1][-1] == 3 for r in rows)
    assert [r[2] for r in rows] == [0, 1, 0, 1, 0]
    assert meta["num_examples"] == 5 and meta["num_truncated"] == 1


def test_sorted_cache_keeps_each_example_index(tmp_path):
    split = nsmc_split(tmp_path, TEXTS)
    path, _ = cd.build_feature_cache(cd.get_processor("nsmc"), split, WordTokenizer(),
                                     SIGNATURE, 16, str(tmp_path / "cache"),
                                     sort_by_length=True)
    rows = read_records(path)
    assert [len(r[1]) for r in rows] == sorted(len(r[1]) for r in rows)
    assert [r[0] for r in rows] == [2, 1, 3, 0, 4]


def test_second_build_hits_the_cache_and_any_key_change_misses(tmp_path):
    split = nsmc_split(tmp_path, TEXTS)
    processor = cd.get_processor("nsmc")
    cache = str(tmp_path / "cache")
    first = WordTokenizer()
    path, _ = cd.build_feature_cache(processor, split, first, SIGNATURE, 16, cache, True)
    assert first.calls == 5
    again = WordTokenizer()
    assert cd.build_feature_cache(processor, split, again, SIGNATURE, 16, cache, True)[0] == path
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
        other, _ = cd.build_feature_cache(processor, split, tokenizer, signature, max_len,
                                          cache, True)
        assert other != path and tokenizer.calls == 5
    # Editing the data file changes the key too.
    edited = nsmc_split(tmp_path, TEXTS + ["new row"])
    tokenizer = WordTokenizer()
    assert cd.build_feature_cache(processor, edited, tokenizer, SIGNATURE, 16, cache,
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
    path, meta = cd.build_feature_cache(cd.get_processor("nsmc"), split, WordTokenizer(),
                                        SIGNATURE, 16, str(tmp_path / "cache"), sort_by_length)
    return path, meta["num_examples"]


def test_bucketed_eval_batches_are_padded_to_their_longest_example(tmp_path):
    path, n = cached(tmp_path, TEXTS)
    batches, _ = run_batches(cd.make_input_fn(path, 16, is_training=False,
                                              bucket_by_length=True, drop_remainder=False), 2)
    assert [b["input_ids"].shape for b in batches] == [(2, 3), (2, 7), (1, 13)]
    assert batches[0]["input_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert batches[0]["segment_ids"].sum() == 0
    indexes = np.concatenate([b["example_index"] for b in batches])
    assert sorted(indexes.tolist()) == list(range(n))


def test_fixed_length_batches_for_tpu_are_padded_with_fake_examples(tmp_path):
    path, n = cached(tmp_path, TEXTS)
    input_fn = cd.make_input_fn(path, 16, is_training=False, bucket_by_length=False,
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
    input_fn = cd.make_input_fn(path, 16, is_training=True, bucket_by_length=True,
                                drop_remainder=True, seed=1)
    batches, _ = run_batches(input_fn, 4, limit=20)
    boundaries = cd.bucket_boundaries(16)
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
    probabilities = cd.collect_predictions(iter(results), 3)
    assert probabilities.tolist() == [[0.8, 0.2], [0.3, 0.7], [0.1, 0.9]]
    with pytest.raises(RuntimeError, match="missing for 1"):
        cd.collect_predictions(iter(results), 4)
    with pytest.raises(RuntimeError, match="repeated for 1"):
        cd.collect_predictions(iter(results + results[:1]), 3)
