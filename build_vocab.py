"""Builds a character-level BERT WordPiece vocabulary (KR-BERT style) with sentencepiece.

    python build_vocab.py --input_file="$DATA_DIR/corpus/*.txt" \
        --output_file=vocab/vocab_20000.txt \
        --eval_file="$DATA_DIR/nsmc/test.tsv" --eval_column=document

Hangul syllables (or, with --subchar, jamo) are the base units: the --max_alphabet most
frequent characters are in the vocabulary both bare and as ##character, and sentencepiece
BPE, run on the text split exactly as tokenization.BasicTokenizer splits it, supplies the
longer pieces. The file starts with [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0-4), then lists
the tokens by frequency: how often WordPiece (tokenization.WordpieceTokenizer) produces
each one on the sampled training text, ties in code point order. It has exactly
--vocab_size lines. Steps and rules: builder.py.

Same input and flags give a byte-identical file, whatever --num_threads.

With --eval_file the file is tokenized with tokenization.FullTokenizer and the new
vocabulary; the [UNK] rate, tokens per word and tokens per line are printed and written,
with the build settings, to <output_file>.report.json.

The output folder is checked to be writable before the build starts, and both files are
written under temporary names, then renamed: a killed run or a full disk leaves the
previous ones as they were. A --vocab_size with no room for every character --max_alphabet
keeps (each in both forms) is refused: lower --max_alphabet to leave characters out.
"""

import collections
import json
import time

from absl import flags

import tokenization
from krbert import cli
from krbert.files import atomic
from krbert.files import paths as file_paths
from krbert.tf_compat import tf
from krbert.vocab import builder

flags.DEFINE_string("input_file", None, "Training text, one sentence per line: comma-separated "
                    "files or globs (gs:// works). Blank lines are skipped.")
flags.DEFINE_string("output_file", None, "Where to write the vocabulary, one token per line.")
flags.DEFINE_integer("vocab_size", 20000, "Tokens in the vocabulary, the 5 special ones "
                     "included.")
flags.DEFINE_bool("do_lower_case", False, "Lower-case and strip accents, as the tokenizer will "
                  "(this NFD-splits Hangul syllables into jamo; keep False for Korean).")
tokenization.define_tokenizer_flags(flags)  # --subchar; --tokenizer is used by the report
flags.DEFINE_integer("max_alphabet", 5000, "Single characters kept, the most frequent ones; "
                     "words holding rarer ones become [UNK].")
flags.DEFINE_integer("input_sentence_size", 2000000, "Lines sampled from the input for training "
                     "(reservoir sampling with --seed; memory holds the sample only); 0 keeps "
                     "every line.")
flags.DEFINE_integer("min_word_count", 2, "Words seen fewer times in the sample are left out of "
                     "the piece learning (they still count for the alphabet and the order); "
                     "sentencepiece's BPE time grows with the distinct words it is given.")
flags.DEFINE_integer("num_threads", 2, "Threads sentencepiece may use (the result is the same).")
flags.DEFINE_integer("seed", 12345, "Seed of the line sampling.")
flags.DEFINE_string("eval_file", None, "Optional text to tokenize with the new vocabulary for the "
                    "report: one text per line, or a TSV column (--eval_column).")
flags.DEFINE_string("eval_column", None, "Read --eval_file as a TSV with a header line and use "
                    "this column (a field in double quotes is unquoted as NSMC's reader does).")

FLAGS = flags.FLAGS

REPORTED_FLAGS = ["input_file", "vocab_size", "do_lower_case", "subchar", "max_alphabet",
                  "input_sentence_size", "min_word_count", "num_threads", "seed", "tokenizer",
                  "eval_file", "eval_column"]


def check_flags():
    """One-line errors for flags that cannot work, before any long step runs."""
    if not FLAGS.input_file:
        raise cli.InputError("--input_file is missing; pass the training text (comma-separated "
                             "files or globs)")
    if not FLAGS.output_file:
        raise cli.InputError("--output_file is missing; pass where to write the vocabulary")
    least = len(builder.SPECIAL_TOKENS) + 2
    if FLAGS.vocab_size < least:
        raise cli.InputError("--vocab_size=%d: pass at least %d (5 special tokens and one "
                             "character in both forms)" % (FLAGS.vocab_size, least))
    for name in ("max_alphabet", "min_word_count", "num_threads"):
        if FLAGS[name].value < 1:
            raise cli.InputError("--%s=%d: pass a positive number" % (name, FLAGS[name].value))
    if FLAGS.input_sentence_size < 0:
        raise cli.InputError("--input_sentence_size=%d: pass 0 (every line) or a positive "
                             "number" % FLAGS.input_sentence_size)
    if FLAGS.eval_file:
        file_paths.check_input_file(FLAGS.eval_file, "--eval_file")
    if FLAGS.eval_column and not FLAGS.eval_file:
        raise cli.InputError("--eval_column=%s needs --eval_file" % FLAGS.eval_column)


def prepare_outputs(files):
    """The paths main() writes, checked before the build: none is an input, all writable.

    Temporary files that killed runs left beside them are removed.
    """
    outputs = [FLAGS.output_file]
    if FLAGS.eval_file:
        outputs.append(FLAGS.output_file + ".report.json")
    inputs = files + ([FLAGS.eval_file] if FLAGS.eval_file else [])
    file_paths.check_outputs_spare_inputs(outputs, inputs, "--output_file",
                                          "--input_file or --eval_file")
    atomic.check_writable(outputs, "--output_file")
    atomic.remove_stale_temporaries_of(outputs)


def write_report(stats, seconds, vocab_file):
    """Evaluates --eval_file with the new vocabulary (written to `vocab_file`, the temporary
    name of --output_file); prints and writes the report, atomically."""
    texts = builder.read_eval_texts(FLAGS.eval_file, FLAGS.eval_column)
    evaluation = builder.evaluate(vocab_file, texts, FLAGS.do_lower_case,
                                  FLAGS.tokenizer, FLAGS.subchar)
    evaluation["vocab_file"] = FLAGS.output_file
    report = collections.OrderedDict([("vocab_file", FLAGS.output_file),
                                      ("vocab_size", FLAGS.vocab_size)])
    report.update(stats)
    report["build_seconds"] = round(seconds, 1)
    report["flags"] = collections.OrderedDict((name, FLAGS[name].value)
                                              for name in REPORTED_FLAGS)
    report["eval"] = evaluation
    path = FLAGS.output_file + ".report.json"
    atomic.write_text_atomic(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print("training text: %d of %d lines sampled, %d words (%d distinct)"
          % (stats["sampled_lines"], stats["input_lines"], stats["training_words"],
             stats["distinct_words"]))
    print(builder.format_evaluation(evaluation))
    print("report: %s" % path)


def main(argv):
    del argv
    check_flags()
    files = file_paths.glob_input_files(FLAGS.input_file, "--input_file")
    prepare_outputs(files)
    start = time.time()
    tokens, stats = builder.build_vocab(
        files, vocab_size=FLAGS.vocab_size, do_lower_case=FLAGS.do_lower_case,
        subchar=FLAGS.subchar, max_alphabet=FLAGS.max_alphabet,
        input_sentence_size=FLAGS.input_sentence_size, min_word_count=FLAGS.min_word_count,
        num_threads=FLAGS.num_threads, seed=FLAGS.seed)
    seconds = time.time() - start
    # The report is evaluated on the vocabulary's temporary file and renamed into place
    # first: the previous vocabulary and report stay until the new ones are complete.
    with atomic.staged(FLAGS.output_file) as vocab_tmp:
        with tf.io.gfile.GFile(vocab_tmp, "w") as out:
            out.write(builder.vocab_text(tokens))
        if FLAGS.eval_file:
            write_report(stats, seconds, vocab_tmp)
    print("wrote %s: %d tokens (%d characters in both forms, %d longer pieces) in %.1f s"
          % (FLAGS.output_file, len(tokens), stats["alphabet_size"],
             stats["multi_char_tokens"], seconds))


if __name__ == "__main__":
    cli.run(main)
