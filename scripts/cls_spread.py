"""How much a model's [CLS] vector varies from text to text: 0 means a collapsed encoder.

    python scripts/cls_spread.py VOCAB CONFIG [CHECKPOINT] < texts.txt

Reads one text a line on stdin (the first 128), encodes "[CLS] text [SEP]" (64 positions)
with the model (random weights without CHECKPOINT, dropout off) and prints the standard
deviation across the texts of the final [CLS] vector and of the pooled output, averaged over
their dimensions. A classifier reads the pooled output: when it is the same for every text,
fine-tuning cannot tell the texts apart.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import modeling  # noqa: E402
import tokenization  # noqa: E402
from krbert.tf_compat import tf  # noqa: E402

TEXTS, SEQ = 128, 64


def main(vocab, config_file, checkpoint=None):
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
    texts = [line.rstrip("\n") for line in sys.stdin][:TEXTS]
    ids = np.zeros((len(texts), SEQ), np.int32)
    for row, text in enumerate(texts):
        tokens = ["[CLS]"] + tokenizer.tokenize(text)[:SEQ - 2] + ["[SEP]"]
        ids[row, :len(tokens)] = tokenizer.convert_tokens_to_ids(tokens)
    config = modeling.BertConfig.from_json_file(config_file)
    with tf.Graph().as_default():
        tf.set_random_seed(1)
        model = modeling.BertModel(config, False, tf.constant(ids),
                                   tf.constant((ids > 0).astype(np.int32)))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            if checkpoint:
                tf.train.Saver(tf.trainable_variables()).restore(sess, checkpoint)
            pooled, sequence = sess.run([model.get_pooled_output(),
                                         model.get_sequence_output()])
    print("%s: %d texts; sd across texts of the [CLS] vector %.4f, of the pooled output %.4f"
          % (checkpoint or "random weights", len(texts), sequence[:, 0].std(0).mean(),
             pooled.std(0).mean()))


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python scripts/cls_spread.py VOCAB CONFIG [CHECKPOINT] < texts.txt")
    main(*sys.argv[1:])
