"""Checkpoint variables as numpy arrays: read every one, write a new checkpoint with TF's saver.

A checkpoint written by ``write_checkpoint`` holds exactly the arrays given, under their
names, in their dtypes: TensorFlow's own ``tf.train.Saver`` writes the bytes, so a variable
read and written back unchanged is bit-identical, whatever its dtype (float32 weights,
int64 global_step).
"""

import collections

from krbert import cli
from krbert.tf_compat import tf


def read_variables(prefix, flag="--init_checkpoint"):
    """OrderedDict {name: numpy array} of every variable of the checkpoint ``prefix``, by name.

    Raises InputError naming ``flag`` when it cannot be read.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        return collections.OrderedDict((name, reader.get_tensor(name)) for name in names)
    except (tf.errors.OpError, ValueError) as e:
        raise cli.InputError("%s=%s: not a readable TensorFlow checkpoint (%s); give a "
                             "checkpoint prefix such as dir/bert_model.ckpt"
                             % (flag, prefix, cli.error_reason(e).split("\n")[0]))


def write_checkpoint(arrays, prefix):
    """Saves {name: array} as the TensorFlow checkpoint ``prefix`` (.index and .data)."""
    with tf.Graph().as_default():
        feeds, variables = {}, []
        for name in sorted(arrays):
            value = arrays[name]
            placeholder = tf.placeholder(tf.as_dtype(value.dtype), value.shape)
            variable = tf.Variable(placeholder, name=name)
            if variable.op.name != name:
                raise ValueError("variable %s was named %s" % (name, variable.op.name))
            feeds[placeholder] = value
            variables.append(variable)
        saver = tf.train.Saver(variables)
        with tf.Session() as sess:
            sess.run([v.initializer for v in variables], feed_dict=feeds)
            saver.save(sess, prefix, write_meta_graph=False, write_state=False)
