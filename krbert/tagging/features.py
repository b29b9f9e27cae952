"""Tagger inputs: characters to WordPiece tokens and back, records, and the input_fn.

``align`` tokenizes a sentence (a list of characters, spaces included) word by word with
the model's tokenizer, giving exactly ``tokenizer.tokenize`` of each space-separated word,
and records which character each token starts at and which token each character belongs
to. Training labels: each token takes the tag of its first character
(``token_labels``). Predictions go back to characters (``project``): the first character
of a token takes the token's tag, the token's other characters its I- form (O stays O),
spaces and characters past the last token kept (the sentence was cut at
--max_seq_length) get O, and ``klue.space_tags`` re-tags spaces.

Records (``write_records``): input_ids and label_ids int64 [L] ([CLS] tokens [SEP], at most
max_seq_length) and example_index; [CLS] and [SEP] carry label weight 0.

Shapes: B batch size, S sequence length, L labels.
"""

import collections

from krbert.estimator import tf_example
from krbert.files import atomic
from krbert.tagging import klue
from krbert.tf_compat import tf
from krbert.tokenizers.bidirectional import to_subchar
from krbert.tokenizers.wordpiece import UNK_TOKEN

Alignment = collections.namedtuple("Alignment", ["tokens", "starts", "owners", "approximate"])
"""tokens: WordPiece tokens of the sentence; starts: per token, the index of its first
character; owners: per character, its token index (None for spaces and characters the
tokenizer drops); approximate: words whose pieces could not be matched to characters one
by one (their tokens all start at the word's first character)."""


def _normal_form(tokenizer, char):
    """What the tokenizer reads of one character: NFKD (sub-character models), cleaned,
    lower-cased and accent-stripped when it lower-cases; "" for dropped or white space."""
    text = to_subchar(char) if tokenizer.subchar else char
    return "".join(tokenizer.basic_tokenizer.tokenize(text))


def _piece_lengths(pieces, word):
    """Lengths in ``word`` of each WordPiece of it, or None when they do not add up."""
    if list(pieces) == [UNK_TOKEN]:
        return [len(word)]
    lengths = [len(p[2:]) if i and p.startswith("##") else len(p)
               for i, p in enumerate(pieces)]
    return lengths if sum(lengths) == len(word) and UNK_TOKEN not in pieces else None


def _align_word(tokenizer, chars, first, last, out):
    """Appends the tokens of chars[first:last] (one space-free word) to ``out``."""
    tokens, starts, owners = out["tokens"], out["starts"], out["owners"]
    positions = []  # character index of each normalised code point
    for index in range(first, last):
        positions.extend([index] * len(_normal_form(tokenizer, chars[index])))
    word = "".join(chars[first:last])
    basic_words = tokenizer.basic_tokenizer.tokenize(to_subchar(word) if tokenizer.subchar
                                                     else word)
    if "".join(basic_words) != "".join(
            _normal_form(tokenizer, chars[i]) for i in range(first, last)):
        out["approximate"] += 1
        basic_words = None
    if basic_words is None:
        pieces = tokenizer.tokenize(word)
        for offset in range(len(pieces)):
            starts.append(first)
        if pieces:
            for index in range(first, last):
                owners[index] = len(tokens)
        tokens.extend(pieces)
        return
    offset = 0
    for basic_word in basic_words:
        pieces = tokenizer.tokenize(basic_word)
        lengths = _piece_lengths(pieces, basic_word)
        if lengths is None:
            out["approximate"] += 1
            lengths = [len(basic_word)] + [0] * (len(pieces) - 1)
        for piece, length in zip(pieces, lengths):
            starts.append(positions[min(offset, len(positions) - 1)])
            for index in set(positions[offset:offset + length]):
                if owners[index] is None:
                    owners[index] = len(tokens)
            tokens.append(piece)
            offset += length


def align(tokenizer, chars):
    """The Alignment of one sentence's characters (see the module)."""
    out = {"tokens": [], "starts": [], "owners": [None] * len(chars), "approximate": 0}
    first = 0
    while first < len(chars):
        if chars[first].isspace():
            first += 1
            continue
        last = first
        while last < len(chars) and not chars[last].isspace():
            last += 1
        _align_word(tokenizer, chars, first, last, out)
        first = last
    return Alignment(out["tokens"], out["starts"], out["owners"], out["approximate"])


def token_labels(alignment, tags):
    """The tag of each token: its first character's."""
    return [tags[start] for start in alignment.starts]


def project(alignment, chars, token_tags):
    """Character tags from ``token_tags`` (the tags of the first len(token_tags) tokens;
    the rest were cut): see the module."""
    tags = []
    for index, owner in enumerate(alignment.owners):
        if owner is None or owner >= len(token_tags) or chars[index] == " ":
            tags.append("O")
            continue
        tag = token_tags[owner]
        if alignment.starts[owner] != index and tag != "O":
            tag = "I-" + klue.entity_type(tag)
        tags.append(tag)
    return klue.space_tags(chars, tags)


# ---------------------------------------------------------------------------------------
# Records


def sentence_features(tokenizer, sentence, max_seq_length, label_map):
    """(alignment, input_ids, label_ids, truncated) of one klue.Sentence."""
    alignment = align(tokenizer, sentence.chars)
    keep = max_seq_length - 2
    tokens = ["[CLS]"] + alignment.tokens[:keep] + ["[SEP]"]
    labels = [label_map["O"]] + [label_map[t] for t in token_labels(alignment, sentence.tags)
                                 [:keep]] + [label_map["O"]]
    return (alignment, tokenizer.convert_tokens_to_ids(tokens), labels,
            len(alignment.tokens) > keep)


def build_features(tokenizer, sentences, max_seq_length, labels=klue.LABELS):
    """(alignments, features, stats) of ``sentences``: features are (input_ids, label_ids)
    per sentence; stats counts truncated sentences and approximate words."""
    label_map = {label: i for i, label in enumerate(labels)}
    alignments, features = [], []
    stats = {"num_truncated": 0, "num_approximate_words": 0, "num_tokens": 0}
    for sentence in sentences:
        alignment, input_ids, label_ids, truncated = sentence_features(
            tokenizer, sentence, max_seq_length, label_map)
        alignments.append(alignment)
        features.append((input_ids, label_ids))
        stats["num_truncated"] += int(truncated)
        stats["num_approximate_words"] += alignment.approximate
        stats["num_tokens"] += len(alignment.tokens)
    return alignments, features, stats


def write_records(path, features):
    """Writes ``features`` (input_ids, label_ids) as a TFRecord, whole."""
    with atomic.atomic_writer(path, tf.io.TFRecordWriter) as writer:
        for index, (input_ids, label_ids) in enumerate(features):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "input_ids": tf_example.int64_feature(input_ids),
                "label_ids": tf_example.int64_feature(label_ids),
                "example_index": tf_example.int64_feature([index]),
            })).SerializeToString())


NAME_TO_FEATURES = {
    "input_ids": tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
    "label_ids": tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
    "example_index": tf.io.FixedLenFeature([], tf.int64),
}


def decode_features(record):
    """One record -> dict of int32: input_ids, input_mask, segment_ids, label_ids,
    label_weights [L] (0 at [CLS] and [SEP]); example_index, is_real_example scalars."""
    example = tf_example.decode_record(record, NAME_TO_FEATURES)
    input_ids = example["input_ids"]
    length = tf.shape(input_ids)[0]
    positions = tf.range(length)
    weights = tf.cast(tf.logical_and(positions > 0, positions < length - 1), tf.int32)
    return {"input_ids": input_ids, "input_mask": tf.ones_like(input_ids),
            "segment_ids": tf.zeros_like(input_ids), "label_ids": example["label_ids"],
            "label_weights": weights, "example_index": example["example_index"],
            "is_real_example": tf.constant(1, tf.int32)}


def _fake_examples(count):
    """``count`` padding examples (is_real_example 0) for fixed-size TPU batches."""
    fake = {"input_ids": tf.zeros([2], tf.int32), "input_mask": tf.ones([2], tf.int32),
            "segment_ids": tf.zeros([2], tf.int32), "label_ids": tf.zeros([2], tf.int32),
            "label_weights": tf.zeros([2], tf.int32), "example_index": tf.constant(-1),
            "is_real_example": tf.constant(0)}
    return tf.data.Dataset.from_tensors(fake).repeat(count)


def make_input_fn(record_path, max_seq_length, is_training, pad_to_max, num_examples=None,
                  seed=None):
    """An Estimator input_fn over ``write_records``' file: batches of int32 input_ids,
    input_mask, segment_ids, label_ids, label_weights [B, S] and example_index,
    is_real_example [B]. S is max_seq_length with ``pad_to_max`` (TPU; fixed-size batches,
    prediction padded with fake examples), else the batch's longest example."""

    def input_fn(params):
        batch_size = params["batch_size"]
        dataset = tf.data.TFRecordDataset(record_path)
        if is_training:
            dataset = dataset.repeat().shuffle(buffer_size=10000, seed=seed)
        dataset = dataset.map(decode_features, num_parallel_calls=2)
        if pad_to_max and not is_training and num_examples and num_examples % batch_size:
            dataset = dataset.concatenate(_fake_examples(-num_examples % batch_size))
        length = max_seq_length if pad_to_max else None
        shapes = {name: [length] for name in ("input_ids", "input_mask", "segment_ids",
                                              "label_ids", "label_weights")}
        shapes.update(example_index=[], is_real_example=[])
        dataset = dataset.padded_batch(batch_size, padded_shapes=shapes,
                                       drop_remainder=pad_to_max or is_training)
        return dataset.prefetch(2)

    return input_fn
