"""What a pretraining TFRecord holds: its features, their bytes, and the sidecar beside it.

Every example has the features of FEATURE_NAMES, as BERT's create_pretraining_data.py writes
them. ``ExampleEncoder`` produces the bytes of one example directly, without protobuf
objects: the same bytes as ``tf.train.Example.SerializeToString(deterministic=True)``. Each
finished file OUTPUT has a JSON sidecar OUTPUT.json recording how it was made and its size
(``read_sidecar``). The reader's side is here too: ``check_records`` checks the files
against the flags and the config before training, and ``feature_spec``/``parse_batch``
parse them in run_pretraining.py's input pipeline.
"""

import hashlib
import json
import os
import struct

from google.protobuf.message import DecodeError

from krbert import cli
from krbert.files import reading
from krbert.tf_compat import tf

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions",
                 "masked_lm_ids", "masked_lm_weights", "next_sentence_labels")
"""Features of every example; masked_lm_weights is a float list, the others int64 lists."""


def sidecar_name(output):
    """The sidecar's path for a TFRecord file ``output``."""
    return output + ".json"


def read_sidecar(output):
    """The sidecar of a finished ``output`` (a dict recording its "bytes"), or None."""
    try:
        with tf.io.gfile.GFile(sidecar_name(output), "r") as reader:
            sidecar = json.loads(reader.read())
    except (tf.errors.OpError, ValueError, OSError):
        return None
    return sidecar if isinstance(sidecar, dict) and "bytes" in sidecar else None


_SIDECAR_PATHS = ("input_file", "output", "outputs")
"""Sidecar fields naming where files were, not what is in them."""


def fingerprint(path):
    """What identifies the content of a finished ``path``: {"bytes": its size} and, with a
    sidecar, "made_with": the sha256 of what the sidecar records about how it was made
    (the input's name and size, the flags, the vocabulary, the counts); without one,
    "sha256" of the bytes (the file is read through)."""
    size = tf.io.gfile.stat(path).length
    sidecar = read_sidecar(path)
    if sidecar is None:
        return {"bytes": size, "sha256": reading.file_sha256(path)}
    made = {key: value for key, value in sidecar.items() if key not in _SIDECAR_PATHS}
    made["input_name"] = os.path.basename(str(sidecar.get("input_file", "")))
    text = json.dumps(made, sort_keys=True).encode("utf-8")
    return {"bytes": size, "made_with": hashlib.sha256(text).hexdigest()}


def _varint(value):
    """Protocol-buffer varint bytes of a non-negative int."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field: tag, length, payload."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int64_entry(name, packed):
    """Features.feature map entry {key: name, value: Feature{int64_list{value: packed}}}.

    An empty list is an empty Int64List (no value field), as protobuf writes it.
    """
    feature = _field(3, _field(1, packed) if packed else b"")
    return _field(1, _field(1, name.encode("utf-8")) + _field(2, feature))


def _float_entry(name, packed):
    """Map entry for a Feature{float_list{value: packed little-endian floats}}."""
    feature = _field(2, _field(1, packed) if packed else b"")
    return _field(1, _field(1, name.encode("utf-8")) + _field(2, feature))


class _EntryPrefixes(dict):
    """packed length -> the bytes before the packed values in an int64 map entry."""

    def __init__(self, name):
        dict.__init__(self)
        self.name = name

    def __missing__(self, length):
        marker = b"\xff" * length  # any bytes of this length: only the prefix is kept
        prefix = _int64_entry(self.name, marker)[:-length] if length else \
            _int64_entry(self.name, b"")
        self[length] = prefix
        return prefix


class ExampleEncoder(object):
    """Serializes instances as tf.train.Example bytes without building protos.

    The bytes equal ``tf.train.Example(...).SerializeToString(deterministic=True)`` for the
    features the original writes: map entries sorted by name; input_ids, input_mask and
    segment_ids padded with 0 to max_seq_length; masked_lm_positions and masked_lm_ids
    padded with 0 and masked_lm_weights (1.0 per prediction) with 0.0 to
    max_predictions_per_seq; next_sentence_labels 1 for a random next.
    """

    def __init__(self, max_seq_length, max_predictions_per_seq, vocab_size):
        self.max_seq_length = max_seq_length
        self.max_predictions = max_predictions_per_seq
        self._varints = [_varint(i) for i in range(max(vocab_size, max_seq_length + 1, 1 << 14))]
        one, zero = struct.pack("<f", 1.0), struct.pack("<f", 0.0)
        self._weights = [_float_entry("masked_lm_weights",
                                      one * m + zero * (max_predictions_per_seq - m))
                         for m in range(max_predictions_per_seq + 1)]
        self._masks = [_int64_entry("input_mask", b"\x01" * n + b"\x00" * (max_seq_length - n))
                       for n in range(max_seq_length + 1)]
        self._labels = [_int64_entry("next_sentence_labels", _varint(label)) for label in (0, 1)]
        self._ids_prefix = _EntryPrefixes("input_ids")
        self._masked_ids_prefix = _EntryPrefixes("masked_lm_ids")
        self._positions_prefix = _EntryPrefixes("masked_lm_positions")
        self._segments_prefix = _EntryPrefixes("segment_ids")[max_seq_length]

    def _length(self, value):
        return self._varints[value] if value < len(self._varints) else _varint(value)

    def encode(self, ids, len_a, len_b, positions, labels, is_random_next):
        """Example bytes of one instance.

        Args:
          ids: the masked input ids, unpadded ([CLS] A [SEP] B [SEP]).
          len_a, len_b: lengths of segments A and B.
          positions, labels: the masked positions (sorted) and their original ids.
          is_random_next: 0 or 1.
        """
        varint = self._varints.__getitem__
        pad = b"\x00" * (self.max_seq_length - len(ids))
        pad_predictions = b"\x00" * (self.max_predictions - len(positions))
        packed_ids = b"".join(map(varint, ids)) + pad
        packed_labels = b"".join(map(varint, labels)) + pad_predictions
        packed_positions = b"".join(map(varint, positions)) + pad_predictions
        features = b"".join((
            self._ids_prefix[len(packed_ids)], packed_ids,
            self._masks[len(ids)],
            self._masked_ids_prefix[len(packed_labels)], packed_labels,
            self._positions_prefix[len(packed_positions)], packed_positions,
            self._weights[len(positions)],
            self._labels[is_random_next],
            self._segments_prefix, b"\x00" * (len_a + 2), b"\x01" * (len_b + 1), pad,
        ))
        return b"\x0a" + self._length(len(features)) + features


# ---------------------------------------------------------------------------------------------
# Reading: checks on the files before any graph is built, and parsing.

def iterate_records(files, limit):
    """Yields (path, index, tf.train.Example) for the first ``limit`` records of ``files``."""
    count = 0
    for path in files:
        if count >= limit:
            return
        try:
            for index, raw in enumerate(tf.io.tf_record_iterator(path)):
                if count >= limit:
                    return
                example = tf.train.Example.FromString(raw)
                yield path, index, example
                count += 1
        except (tf.errors.OpError, DecodeError) as e:
            raise cli.InputError("%s: not a TFRecord file of tf.train.Example (%s); give the "
                                 "files written by create_pretraining_data.py" %
                                 (path, cli.error_reason(e)))


REGENERATE = "regenerate it with create_pretraining_data.py"


def check_file_is_whole(path, max_seq_length, max_predictions_per_seq):
    """Raises InputError unless ``path`` is a whole TFRecord file made with these lengths.

    With a sidecar the check costs two small reads: the sizes and lengths it records
    must match. Without one the file is read through: every record's length and CRC,
    and the records must end exactly at the end of the file. Returns whether the file
    had to be read through.
    """
    if tf.io.gfile.isdir(path):
        raise cli.InputError("%s is a folder; give TFRecord files, e.g. '%s/*.tfrecord'"
                             % (path, path.rstrip("/")))
    size = tf.io.gfile.stat(path).length
    sidecar = read_sidecar(path)
    if sidecar is not None:
        settings = sidecar.get("settings") or {}
        for flag, want in (("max_seq_length", max_seq_length),
                           ("max_predictions_per_seq", max_predictions_per_seq)):
            if settings.get(flag, want) != want:
                raise cli.InputError(
                    "%s was made with --%s=%s (%s.json) but --%s=%d; pass --%s=%s or "
                    "regenerate the data with --%s=%d" % (path, flag, settings[flag], path, flag,
                                                          want, flag, settings[flag], flag, want))
        if sidecar["bytes"] != size:
            raise cli.InputError("%s has %d bytes but %s.json records %d: it was cut short or "
                                 "changed; %s" % (path, size, path, sidecar["bytes"], REGENERATE))
        return False
    end = 0
    try:
        for raw in tf.io.tf_record_iterator(path):
            end += len(raw) + 16  # length, its CRC, the data, its CRC
    except tf.errors.OpError as e:
        raise cli.InputError("%s: damaged after byte %d of %d (%s); %s" % (
            path, end, size, cli.error_reason(e).split("'")[0].strip(),
            REGENERATE))
    if end != size:
        raise cli.InputError("%s: cut short: its whole records end at byte %d of %d; %s"
                             % (path, end, size, REGENERATE))
    return True


def check_first_record(path, feature, max_seq_length, max_predictions_per_seq):
    """Raises InputError unless the features of a file's first record are those of
    create_pretraining_data.py with these lengths."""
    missing = [name for name in FEATURE_NAMES if name not in feature]
    if missing:
        raise cli.InputError("%s: records lack %s; write them with "
                             "create_pretraining_data.py" % (path, ", ".join(missing)))
    for name, flag, want in (("input_ids", "max_seq_length", max_seq_length),
                             ("masked_lm_positions", "max_predictions_per_seq",
                              max_predictions_per_seq)):
        got = len(feature[name].int64_list.value)
        if got != want:
            raise cli.InputError(
                "%s: %s has length %d but --%s=%d; pass --%s=%d or regenerate the data "
                "with --%s=%d" % (path, name, got, flag, want, flag, got, flag, want))


def check_records(files, max_seq_length, max_predictions_per_seq, vocab_size,
                  type_vocab_size, limit=1000):
    """Checks the data against the flags and the config; raises a one-line InputError.

    Every file must be whole (``check_file_is_whole``) and its first record must hold
    every feature, with input_ids of length max_seq_length and masked_lm_positions of
    length max_predictions_per_seq; in the first ``limit`` records every token id must
    be below vocab_size and every segment id below type_vocab_size.
    """
    read_through, empty = 0, []
    for path in files:
        read_through += check_file_is_whole(path, max_seq_length, max_predictions_per_seq)
        first = next(iterate_records([path], 1), None)
        if first is None:
            empty.append(path)
            continue
        check_first_record(path, first[2].features.feature, max_seq_length,
                           max_predictions_per_seq)
    if len(empty) == len(files):
        raise cli.InputError("%s%s: no records (empty files); give the output of "
                             "create_pretraining_data.py" %
                             (files[0], " and %d more" % (len(files) - 1) if files[1:] else ""))
    if empty:
        tf.logging.warning("%d input files hold no record: %s", len(empty), ", ".join(empty))
    if read_through:
        tf.logging.info("Checked %d input files without a .json sidecar by reading them "
                        "through (keep the sidecars beside the files to skip this)",
                        read_through)
    for path, index, example in iterate_records(files, limit):
        feature = example.features.feature
        for name, size, what in (("input_ids", vocab_size, "vocab_size"),
                                 ("masked_lm_ids", vocab_size, "vocab_size"),
                                 ("segment_ids", type_vocab_size, "type_vocab_size")):
            values = feature[name].int64_list.value
            if values and (max(values) >= size or min(values) < 0):
                bad = max(values) if max(values) >= size else min(values)
                raise cli.InputError(
                    "%s: record %d has %s %d, outside [0, %d) (%s of --bert_config_file); "
                    "the data was made with another vocabulary or config" %
                    (path, index, name, bad, size, what))


def feature_spec(max_seq_length, max_predictions_per_seq):
    """The tf.train.Example features: int64 [S] x3, [P] x2, float [P], int64 [1]."""
    return {
        "input_ids": tf.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.FixedLenFeature([max_seq_length], tf.int64),
        "masked_lm_positions": tf.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_ids": tf.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_weights": tf.FixedLenFeature([max_predictions_per_seq], tf.float32),
        "next_sentence_labels": tf.FixedLenFeature([1], tf.int64),
    }


def parse_batch(records, spec):
    """string [B] serialized examples -> dict of int32 / float32 [B, ...] tensors."""
    features = tf.io.parse_example(records, spec)
    return {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t
            for name, t in features.items()}
