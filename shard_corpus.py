r"""Cuts a pre-training corpus into shards at document boundaries, streaming.

    python shard_corpus.py --input_file=big.txt --output_prefix=shards/part --num_shards=8
    python shard_corpus.py --input_file='raw/*.txt' --output_prefix=shards/part \
        --lines_per_shard=1000000

The corpus format is create_pretraining_data.py's: one sentence per line, a blank line
(only whitespace) between documents. A shard never splits a document, so every shard is a
valid input on its own; the end of each input file also ends a document. Text lines are
copied byte for byte, with one empty line between documents. Shards are named
PREFIX-00000.txt, PREFIX-00001.txt, ... (--output_suffix) and written under a temporary
name, then renamed, so a shard that exists is complete. A shard name that is one of the
input files is refused.

--num_shards=N balances bytes: shard i takes documents until the bytes written reach
(i + 1) / N of the input's size. --lines_per_shard=M starts a new shard at the first
document boundary after M lines. Only one document is held in memory at a time.
"""

import time

from absl import flags

from krbert import cli
from krbert.corpus import shards as corpus_shards
from krbert.files import paths as file_paths

flags.DEFINE_string("input_file", None,
                    "Corpus files: comma-separated files or globs (gs:// works), read in "
                    "order.")
flags.DEFINE_string("output_prefix", None,
                    "Shards are written as <output_prefix>-00000<output_suffix>, ...")
flags.DEFINE_string("output_suffix", ".txt", "File name ending of the shards.")
flags.DEFINE_integer("num_shards", 0, "Cut into this many shards of about equal bytes.")
flags.DEFINE_integer("lines_per_shard", 0,
                     "Or: start a new shard at the first document end after this many lines.")

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise cli.InputError("unexpected arguments %s; every setting is a --flag"
                             % " ".join(argv[1:]))
    if not FLAGS.input_file or not FLAGS.output_prefix:
        raise cli.InputError("--input_file and --output_prefix are required")
    if (FLAGS.num_shards > 0) == (FLAGS.lines_per_shard > 0):
        raise cli.InputError("give exactly one of --num_shards and --lines_per_shard (> 0)")
    started = time.time()
    paths = file_paths.glob_input_files(FLAGS.input_file, "--input_file")
    names, documents, lines = corpus_shards.shard_corpus(
        paths, FLAGS.output_prefix, FLAGS.output_suffix, FLAGS.num_shards,
        FLAGS.lines_per_shard)
    if not names:
        raise cli.InputError("%s: no documents found (only blank lines); nothing to shard"
                             % FLAGS.input_file)
    print("shard_corpus: %d shards (%s ... %s), %d documents, %d lines, %.1f s"
          % (len(names), names[0], names[-1], documents, lines, time.time() - started))


if __name__ == "__main__":
    cli.run(main)
