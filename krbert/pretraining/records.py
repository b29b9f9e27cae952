"""What a pretraining TFRecord holds: its features, their bytes, and the sidecar beside it.

Every example has the features of FEATURE_NAMES, as BERT's create_pretraining_data.py writes
them. ``ExampleEncoder`` produces the bytes of one example directly, without protobuf
objects: the same bytes as ``tf.train.Example.SerializeToString(deterministic=True)``. Each
finished file OUTPUT has a JSON sidecar OUTPUT.json recording how it was made and its size
(``read_sidecar``); run_pretraining.py uses it to check its inputs before training.
"""

import json
import struct

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
