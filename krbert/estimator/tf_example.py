"""tf.train.Example features: int64 lists written, serialized records decoded."""

from krbert.tf_compat import tf


def int64_feature(values):
    """A tf.train.Feature holding the ints ``values`` (any iterable) as an Int64List."""
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def decode_record(record, name_to_features):
    """Parses one serialized tf.train.Example; int64 features become int32 (TPU-friendly)."""
    example = tf.parse_single_example(record, name_to_features)
    for name in list(example.keys()):
        if example[name].dtype == tf.int64:
            example[name] = tf.cast(example[name], tf.int32)
    return example
