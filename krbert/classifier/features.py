"""Classifier inputs: token ids, their cache, and the Estimator input_fn.

Examples (krbert.classifier.tasks.InputExample) become token ids once: ``build_feature_cache``
writes them as a TFRecord keyed by everything the ids depend on, so a second run with the
same vocabulary, tokenizer and data skips tokenization. ``make_input_fn`` feeds the cached
records to an Estimator, either padded to a fixed length (TPU) or in batches padded only to
their longest member (CPU).
"""

import hashlib
import json
import os

import numpy as np
from tqdm import tqdm

from krbert.estimator import tf_example
from krbert.files import atomic, reading
from krbert.tf_compat import tf


CACHE_FORMAT = 2
"""Bump when the record layout changes so old caches are not reused."""


# ---------------------------------------------------------------------------------------
# Features and their cache


def truncate_pair(tokens_a, tokens_b, max_tokens):
    """Cuts two token lists, in place, to ``max_tokens`` together, longest first: while
    too long, drop the last token of the longer list (of ``tokens_b`` on a tie), the
    original BERT's rule, which keeps as much of the shorter text as fits."""
    while len(tokens_a) + len(tokens_b) > max_tokens:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def example_to_ids(example, tokenizer, max_seq_length):
    """Token ids ``[CLS] tokens [SEP]`` (at most ``max_seq_length``) and whether the
    text was cut (single sentences: segment ids are all 0)."""
    tokens = tokenizer.tokenize(example.text)
    truncated = len(tokens) > max_seq_length - 2
    tokens = ["[CLS]"] + tokens[:max_seq_length - 2] + ["[SEP]"]
    return tokenizer.convert_tokens_to_ids(tokens), truncated


def pair_to_ids(example, tokenizer, max_seq_length):
    """A pair as ``[CLS] a [SEP] b [SEP]``: (token ids, segment ids, whether cut).

    Segment ids are 0 for [CLS], a and the first [SEP], 1 for b and the last [SEP]; a and
    b are cut together to ``max_seq_length - 3`` tokens by ``truncate_pair``. An empty
    text_b gives the single-sentence layout ``[CLS] a [SEP]``, as in the original BERT.
    """
    if not example.text_b:
        ids, truncated = example_to_ids(example, tokenizer, max_seq_length)
        return ids, [0] * len(ids), truncated
    tokens_a = tokenizer.tokenize(example.text)
    tokens_b = tokenizer.tokenize(example.text_b)
    truncated = len(tokens_a) + len(tokens_b) > max_seq_length - 3
    truncate_pair(tokens_a, tokens_b, max_seq_length - 3)
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"] + tokens_b + ["[SEP]"]
    segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    return tokenizer.convert_tokens_to_ids(tokens), segment_ids, truncated


def feature_record(index, ids, label, segment_ids=None):
    """One cached example as a serialized tf.train.Example.

    A single sentence holds input_ids, label_ids and example_index (the layout of
    CACHE_FORMAT 2, unchanged); a pair adds segment_ids; a score (float ``label``)
    writes label_ids 0 and adds label_values.
    """
    feature = {"input_ids": tf_example.int64_feature(ids),
               "label_ids": tf_example.int64_feature([0 if isinstance(label, float)
                                                      else label]),
               "example_index": tf_example.int64_feature([index])}
    if segment_ids is not None:
        feature["segment_ids"] = tf_example.int64_feature(segment_ids)
    if isinstance(label, float):
        feature["label_values"] = tf.train.Feature(float_list=tf.train.FloatList(value=[label]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def cache_paths(cache_dir, processor, split_name, key):
    stem = os.path.join(cache_dir, "%s_%s_%s" % (processor.tag, split_name, key[:16]))
    return stem + ".tf_record", stem + ".json"


def build_feature_cache(processor, split, tokenizer, tokenizer_signature, max_seq_length,
                        cache_dir, sort_by_length):
    """Token ids of every example of ``split`` as a TFRecord, reused when possible.

    Args:
      processor: the task.
      split: a Split from ``processor.read_split``.
      tokenizer: object with ``tokenize(text)`` and ``convert_tokens_to_ids(tokens)``.
      tokenizer_signature: dict of everything the tokenizer output depends on
        (vocabulary hash, tokenizer mode, lower casing, ...).
      max_seq_length: ids per example at most, [CLS] and [SEP] included.
      cache_dir: folder of the cache (gs:// too).
      sort_by_length: write records shortest first (evaluation and prediction: batches
        of similar length); each record keeps its ``example_index`` in the split.

    Returns:
      (record_path, meta): meta holds num_examples, num_truncated and the key fields.
    """
    key_fields = dict(tokenizer_signature, format=CACHE_FORMAT, task=processor.tag,
                      split=split.name, split_sha256=reading.file_sha256(split.path),
                      max_seq_length=int(max_seq_length), sorted=bool(sort_by_length))
    key_fields.update(getattr(processor, "cache_fields", {}))  # a custom task's columns
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode("utf-8")).hexdigest()
    record_path, meta_path = cache_paths(cache_dir, processor, split.name, key)
    if tf.io.gfile.exists(meta_path) and tf.io.gfile.exists(record_path):
        with tf.io.gfile.GFile(meta_path, "r") as handle:
            meta = json.load(handle)
        if meta.get("key") == key and meta.get("num_examples") == len(split.examples):
            tf.logging.info("Feature cache hit for %s %s: %s (tokenization skipped)",
                            processor.tag, split.name, record_path)
            return record_path, meta

    features = []
    truncated = 0
    for index, example in enumerate(tqdm(split.examples, desc="tokenizing %s" % split.name,
                                         unit=" ex", mininterval=2.0)):
        if processor.is_pair:
            ids, segment_ids, was_cut = pair_to_ids(example, tokenizer, max_seq_length)
        else:
            (ids, was_cut), segment_ids = example_to_ids(example, tokenizer, max_seq_length), None
        truncated += int(was_cut)
        features.append((index, ids, processor.label_value(example.label), segment_ids))
    if sort_by_length:
        features.sort(key=lambda f: len(f[1]))

    atomic.check_writable([record_path, meta_path], "--cache_dir")
    atomic.remove_stale_temporaries(cache_dir, "%s_%s_" % (processor.tag, split.name))
    with atomic.atomic_writer(record_path, tf.io.TFRecordWriter) as writer:
        for index, ids, label, segment_ids in tqdm(features, desc="writing %s" % split.name,
                                                   unit=" ex", mininterval=2.0):
            writer.write(feature_record(index, ids, label, segment_ids))
    lengths = [len(f[1]) for f in features]
    meta = {"key": key, "key_fields": key_fields, "num_examples": len(features),
            "num_truncated": truncated,
            "mean_length": float(sum(lengths)) / max(1, len(lengths)),
            "max_length": max(lengths) if lengths else 0}
    atomic.write_text_atomic(meta_path, json.dumps(meta, indent=1, sort_keys=True))
    tf.logging.info("Wrote %d %s %s features to %s (%d truncated to %d tokens, mean "
                    "length %.1f)", len(features), processor.tag, split.name, record_path,
                    truncated, max_seq_length, meta["mean_length"])
    return record_path, meta


# ---------------------------------------------------------------------------------------
# Input pipeline

NAME_TO_FEATURES = {
    "input_ids": tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
    "label_ids": tf.io.FixedLenFeature([], tf.int64),
    "example_index": tf.io.FixedLenFeature([], tf.int64),
    "segment_ids": tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
    "label_values": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
}


def decode_features(record):
    """One cached record -> the model's features, unpadded.

    Returns dict: input_ids, input_mask, segment_ids int32 [L]; label_ids,
    example_index, is_real_example int32 scalars; label_values float32 scalar (a score;
    0 for a class). A record without segment_ids (a single sentence) gets zeros.
    """
    example = tf.parse_single_example(record, NAME_TO_FEATURES)
    input_ids = tf.cast(example["input_ids"], tf.int32)
    segment_ids = tf.cast(example["segment_ids"], tf.int32)
    segment_ids = tf.pad(segment_ids, [[0, tf.shape(input_ids)[0] - tf.shape(segment_ids)[0]]])
    return {
        "input_ids": input_ids,
        "input_mask": tf.ones_like(input_ids),
        "segment_ids": segment_ids,
        "label_ids": tf.cast(example["label_ids"], tf.int32),
        "label_values": example["label_values"],
        "example_index": tf.cast(example["example_index"], tf.int32),
        "is_real_example": tf.constant(1, tf.int32),
    }


def _fake_examples(count):
    """``count`` padding examples (is_real_example = 0) for fixed-size TPU batches."""
    fake = {
        "input_ids": tf.zeros([2], tf.int32),
        "input_mask": tf.ones([2], tf.int32),
        "segment_ids": tf.zeros([2], tf.int32),
        "label_ids": tf.constant(0, tf.int32),
        "label_values": tf.constant(0.0, tf.float32),
        "example_index": tf.constant(-1, tf.int32),
        "is_real_example": tf.constant(0, tf.int32),
    }
    return tf.data.Dataset.from_tensors(fake).repeat(count)


def bucket_boundaries(max_seq_length):
    """Upper length limits of the training buckets below ``max_seq_length``."""
    return [b for b in (8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 192, 256, 384)
            if b < max_seq_length]


def _padded_shapes(length):
    return {"input_ids": [length], "input_mask": [length], "segment_ids": [length],
            "label_ids": [], "label_values": [], "example_index": [], "is_real_example": []}


def make_input_fn(record_path, max_seq_length, is_training, bucket_by_length,
                  drop_remainder, num_examples=None, pad_to_batch=False,
                  shuffle_buffer=10000, seed=None):
    """An Estimator input_fn over a feature cache.

    Every batch is a dict of int32 tensors: input_ids, input_mask, segment_ids [B, S];
    label_ids, example_index, is_real_example [B]. S is ``max_seq_length`` unless
    ``bucket_by_length``, where S is the longest example of the batch (CPU only: the
    shape then changes from batch to batch).

    Args:
      record_path: TFRecord from ``build_feature_cache``.
      max_seq_length: fixed length S of padded batches.
      is_training: repeat and shuffle forever; with ``bucket_by_length`` batches are
        drawn from length buckets.
      bucket_by_length: pad each batch only to its longest example.
      drop_remainder: drop a last partial batch (TPU needs fixed shapes).
      num_examples: records in the file (for ``pad_to_batch``).
      pad_to_batch: append fake examples (is_real_example = 0) so that the number of
        examples is a multiple of the batch size (TPU evaluation and prediction).
      shuffle_buffer: training shuffle buffer, in examples.
      seed: shuffle seed (tests).
    """

    def input_fn(params):
        batch_size = params["batch_size"]
        dataset = tf.data.TFRecordDataset(record_path)
        if is_training:
            dataset = dataset.repeat().shuffle(buffer_size=shuffle_buffer, seed=seed)
        dataset = dataset.map(decode_features, num_parallel_calls=2)
        if pad_to_batch and num_examples is not None and num_examples % batch_size:
            dataset = dataset.concatenate(_fake_examples(-num_examples % batch_size))
        if is_training and bucket_by_length:
            boundaries = bucket_boundaries(max_seq_length)
            dataset = dataset.apply(tf.data.experimental.bucket_by_sequence_length(
                element_length_func=lambda f: tf.shape(f["input_ids"])[0],
                bucket_boundaries=[b + 1 for b in boundaries],
                bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
                drop_remainder=True))
        else:
            length = None if bucket_by_length else max_seq_length
            dataset = dataset.padded_batch(batch_size, padded_shapes=_padded_shapes(length),
                                           drop_remainder=drop_remainder)
        return dataset.prefetch(2)

    return input_fn


def collect_predictions(results, num_examples, key="probabilities"):
    """Class probabilities (or scores) in input order from per-example prediction dicts.

    Args:
      results: iterable of dicts with ``key`` float [C] (probabilities, or scores [1]),
        example_index and is_real_example, in any order; fake (padding) examples are
        skipped.
      num_examples: examples in the split.

    Returns:
      float [num_examples, C]; RuntimeError when an example is missing or repeated.
    """
    probabilities = None
    seen = np.zeros(num_examples, dtype=np.int64)
    for result in results:
        if not result["is_real_example"]:
            continue
        index = int(result["example_index"])
        if probabilities is None:
            probabilities = np.zeros((num_examples, len(result[key])))
        probabilities[index] = result[key]
        seen[index] += 1
    if probabilities is None or (seen != 1).any():
        raise RuntimeError("predictions missing for %d and repeated for %d of %d examples"
                           % (int((seen == 0).sum()), int((seen > 1).sum()), num_examples))
    return probabilities
