r"""Creates masked-LM / next-sentence pre-training examples (TFRecords of tf.train.Example).

    python create_pretraining_data.py --input_file='corpus/shard-*.txt' \
        --output_file=pretrain/ --vocab_file=vocab.txt --do_lower_case=False \
        --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=5 --num_workers=4

Input: one sentence per line, a blank line between documents (cut a big corpus into such
files with shard_corpus.py). Same flags and defaults as BERT's create_pretraining_data.py,
plus --tokenizer/--subchar (KR-BERT) and --num_workers.

Every input file is a shard, processed on its own by a worker process, and its examples
are the original script's for that file alone, instance for instance and in the same
order (same seed, same draws; see krbert/pretraining/instances.py). Unlike the original, several
input files are not pooled into one set of documents: each gives its own output. A worker
holds one shard as token ids and instances as small int rows, so memory follows the
largest shard, not the corpus.

Outputs (--output_file, comma-separated):
  * as many names as input files: the i-th input (in the sorted glob order) goes to the
    i-th name;
  * one input and several names: its examples are dealt round-robin over them, as the
    original does;
  * several inputs and one name: a directory (an existing one, or a name ending in "/")
    receives <input file name without extension>.tfrecord per input; any other name
    NAME.EXT becomes NAME-00000-of-0000N.EXT, NAME-00001-of-0000N.EXT, ... in input order.
Each output is written under a temporary name of its own process and renamed when
complete; then OUTPUT.json records its instance count, the input, the flags and the
vocabulary's sha256. A rerun skips the outputs whose OUTPUT.json matches (same input, flags
and vocabulary), redoes the rest and removes what killed runs left. One run at a time
writes into an output folder: a second one stops in one line while the first holds it (a
killed run's marker does not block). An output that names an input is refused, and so is
an input that is mostly not UTF-8 text or an earlier output (a glob such as DIR/* that
matches what was written into DIR). A worker killed by a
signal (the out-of-memory killer) stops the run with the name of its shard, and workers
stop when this process dies.

Examples are serialized with their feature map in sorted key order
(SerializeToString(deterministic=True) of the original's examples), so reruns give
identical bytes.
"""

from absl import flags

import tokenization
from krbert import cli
from krbert.pretraining import pipeline

flags.DEFINE_string("input_file", None,
                    "Input raw text file (or comma-separated list of files); globs and gs:// "
                    "work. One sentence per line, blank lines between documents.")
flags.DEFINE_string(
    "output_file", None,
    "Output TF example file (or comma-separated list of files). With several input files "
    "and one name: a directory (existing, or ending in /) gets <input name>.tfrecord per "
    "input, other names NAME.EXT become NAME-0000i-of-0000N.EXT in input order.")
flags.DEFINE_string("vocab_file", None,
                    "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_bool(
    "do_lower_case", True,
    "Whether to lower case the input text. Should be True for uncased models and False "
    "for cased models (and for KR-BERT's Korean vocabularies).")
flags.DEFINE_bool("do_whole_word_mask", False,
                  "Whether to use whole word masking rather than per-WordPiece masking.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20,
                     "Maximum number of masked LM predictions per sequence.")
flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
flags.DEFINE_integer("dupe_factor", 10,
                     "Number of times to duplicate the input data (with different masks).")
flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
flags.DEFINE_float("short_seq_prob", 0.1,
                   "Probability of creating sequences which are shorter than the maximum "
                   "length.")
tokenization.define_tokenizer_flags(flags)  # --tokenizer, --subchar
flags.DEFINE_integer("num_workers", 0,
                     "Worker processes, each making one input file at a time; 0 = one per "
                     "CPU core (never more than there are input files).")

FLAGS = flags.FLAGS


def settings_from_flags():
    """The flags that decide the examples (recorded in every output's sidecar)."""
    return {
        "do_lower_case": FLAGS.do_lower_case,
        "do_whole_word_mask": FLAGS.do_whole_word_mask,
        "max_seq_length": FLAGS.max_seq_length,
        "max_predictions_per_seq": FLAGS.max_predictions_per_seq,
        "random_seed": FLAGS.random_seed,
        "dupe_factor": FLAGS.dupe_factor,
        "masked_lm_prob": FLAGS.masked_lm_prob,
        "short_seq_prob": FLAGS.short_seq_prob,
        "tokenizer": FLAGS.tokenizer,
        "subchar": FLAGS.subchar,
    }


def main(argv):
    if len(argv) > 1:
        raise cli.InputError("unexpected arguments %s; every setting is a --flag"
                             % " ".join(argv[1:]))
    summary = pipeline.run(FLAGS.input_file, FLAGS.output_file, FLAGS.vocab_file,
                           settings_from_flags(), num_workers=FLAGS.num_workers)
    print(pipeline.summary_line(summary))


if __name__ == "__main__":
    cli.run(main)
