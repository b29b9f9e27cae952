"""krbert.checkpoints.restore: checkpoints that are none refused in one line, shapes checked
before a warm start, the files a checkpoint is made of."""

import os

import pytest

from krbert import cli
from krbert.checkpoints import restore
from krbert.tf_compat import tf


def save_checkpoint(prefix, **shapes):
    with tf.Graph().as_default():
        for name, shape in shapes.items():
            tf.get_variable(name.replace("__", "/"), shape)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return tf.train.Saver().save(sess, prefix)


@pytest.mark.parametrize("case, message", [
    ("missing", "--init_checkpoint=PATH not found; give a checkpoint prefix"),
    ("text file", "--init_checkpoint=PATH is not a TensorFlow checkpoint (Unable to open table"),
    ("empty folder", "--init_checkpoint=PATH is not a TensorFlow checkpoint (Couldn't find"),
    ("index file", "--init_checkpoint=PATH holds no variable; give the prefix, without the "
                   ".index or .data-* suffix"),
])
def test_an_init_checkpoint_that_is_no_checkpoint_is_one_line(tmp_path, case, message):
    path = str(tmp_path / "model.ckpt")
    if case == "text file":
        (tmp_path / "model.ckpt").write_text(u"not a checkpoint")
    elif case == "empty folder":
        path = str(tmp_path)
    elif case == "index file":
        path = save_checkpoint(path, bert__w=[2, 3]) + ".index"
    with pytest.raises(cli.InputError) as error:
        restore.checkpoint_shapes(path)
    assert str(error.value).startswith(message.replace("PATH", path)), str(error.value)


def test_warm_start_names_the_variable_and_both_shapes_when_they_differ(tmp_path):
    prefix = save_checkpoint(str(tmp_path / "model.ckpt"), bert__a=[4], bert__w=[3, 4])
    with tf.Graph().as_default():
        tf.get_variable("bert/a", [4])
        tf.get_variable("bert/w", [3, 5])
        with pytest.raises(cli.InputError) as error:
            restore.warm_start(prefix, use_tpu=False)
    assert str(error.value) == (
        "--init_checkpoint=%s: variable bert/w has shape [3, 4] in the checkpoint but [3, 5] in "
        "this model; use the --bert_config_file the checkpoint was trained with" % prefix)
    with tf.Graph().as_default():  # matching shapes load
        tf.get_variable("bert/a", [4])
        tf.get_variable("bert/w", [3, 4])
        restore.warm_start(prefix, use_tpu=False)


def test_checkpoint_files_are_those_of_the_prefix_or_all_in_the_folder(tmp_path):
    with tf.Graph().as_default():
        tf.get_variable("bert/w", [2])
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            saver = tf.train.Saver()
            for step in (1, 10):
                saver.save(sess, str(tmp_path / "model.ckpt"), global_step=step)
    (tmp_path / "model.ckpt-1-notes.txt").write_text(u"not of the checkpoint")
    assert restore.checkpoint_files(str(tmp_path / "model.ckpt-1")) == [
        str(tmp_path / name) for name in ("model.ckpt-1.data-00000-of-00001",
                                          "model.ckpt-1.index", "model.ckpt-1.meta")]
    assert restore.checkpoint_files(str(tmp_path)) == sorted(
        str(tmp_path / name) for name in os.listdir(str(tmp_path)))
    assert restore.checkpoint_files(str(tmp_path / "model.ckpt-2")) == []
    assert restore.checkpoint_files(str(tmp_path / "missing" / "model.ckpt")) == []
