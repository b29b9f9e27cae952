"""tf.train.Example decoding for the Estimator input functions."""


from krbert.tf_compat import tf


def decode_record(record, name_to_features):
    """Parses one serialized tf.train.Example; int64 features become int32 (TPU-friendly)."""
    example = tf.parse_single_example(record, name_to_features)
    for name in list(example.keys()):
        if example[name].dtype == tf.int64:
            example[name] = tf.cast(example[name], tf.int32)
    return example
