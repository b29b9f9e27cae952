r"""Grows a BERT model's vocabulary: new tokens get ids after the old ones and rows in the model.

    python extend_vocab.py --vocab_file=vocab/vocab_20000.txt \
        --bert_config_file=vocab/bert_config_mini.json --init_checkpoint=runs/base/model.ckpt-1500 \
        --input_file='my_domain/*.txt' --num_new_tokens=500 --do_lower_case=False \
        --output_dir=runs/base_grown

    python extend_vocab.py ... --new_tokens_file=my_tokens.txt --output_dir=...

Tokens come from --new_tokens_file (one a line, written as the vocabulary writes them) or are
chosen from the --input_file corpus: the pieces and words frequent there that the vocabulary
splits into several pieces or [UNK], found with the vocabulary builder's BPE and ranked by how
often the tokenizer produces them (krbert/vocab/extend.py says how).

--output_dir (a new folder) receives vocab.txt (every old token keeps its id, the new ones
follow), bert_config.json (the new vocab_size), bert_model.ckpt (the word embeddings and the
masked-LM output bias grown, a new row the mean of the rows of the pieces the old tokenizer
gives for the token; every other variable bit-identical) and extend_report.json: the new
tokens with their frequencies and old pieces, and the [UNK] rate and tokens per line before
and after, on --eval_file or else the corpus. The folder is written under a temporary name
and renamed when complete. Continue pretraining from it with run_pretraining.py
--init_checkpoint=<output_dir>/bert_model.ckpt (scripts/continue_pretraining.sh).
"""

import collections
import json
import os
import shutil

from absl import flags

import tokenization
from krbert import cli
from krbert.checkpoints import variables
from krbert.files import atomic
from krbert.files import paths as file_paths
from krbert.tf_compat import tf
from krbert.vocab import builder, extend

flags.DEFINE_string("vocab_file", None, "The model's vocabulary, one token a line.")
flags.DEFINE_string("bert_config_file", None, "The model's bert_config.json.")
flags.DEFINE_string("init_checkpoint", None,
                    "The model's checkpoint: a prefix such as dir/bert_model.ckpt or "
                    "dir/model.ckpt-1000 (a released, converted or own model).")
flags.DEFINE_string("output_dir", None, "A new folder for the grown model.")
flags.DEFINE_string("new_tokens_file", None,
                    "The tokens to add, one a line, in the order they get their ids: 'abc' "
                    "starts a word (or is one); '##abc' continues one (with "
                    "--continuation_tokens).")
flags.DEFINE_string("input_file", None,
                    "The domain's text, one sentence a line (comma-separated files or globs): "
                    "tokens are chosen from it (without --new_tokens_file) and their "
                    "frequencies counted on it.")
flags.DEFINE_integer("num_new_tokens", None, "How many tokens to choose from --input_file.")
flags.DEFINE_bool("do_lower_case", True,
                  "Lower-case the text, as the model was trained (False for KR-BERT).")
tokenization.define_tokenizer_flags(flags)
flags.DEFINE_bool("continuation_tokens", False,
                  "Allow '##abc' lines in --new_tokens_file: pieces that continue a word.")
flags.DEFINE_integer("min_count", 2,
                     "Chosen tokens come from words and characters seen at least this often.")
flags.DEFINE_integer("input_sentence_size", 2000000,
                     "Lines of --input_file sampled (seeded reservoir sampling); 0: every line.")
flags.DEFINE_integer("seed", 12345, "Seed of the line sampling.")
flags.DEFINE_integer("num_threads", 2, "Threads sentencepiece may use (same result).")
flags.DEFINE_string("eval_file", None,
                    "Text for the report's [UNK] rate and tokens per line, one text a line, "
                    "blank lines left out (default: the --input_file sample).")

REPORT = "extend_report.json"


def check_flags(FLAGS):  # pylint: disable=invalid-name
    """One-line errors for flags that cannot work, before anything is read."""
    for name, what in (("vocab_file", "the model's vocabulary"),
                       ("bert_config_file", "the model's bert_config.json")):
        file_paths.check_file_flag(name, getattr(FLAGS, name), what)
    if not FLAGS.init_checkpoint:
        raise cli.InputError("--init_checkpoint is required; give the model's checkpoint "
                             "prefix, e.g. dir/bert_model.ckpt")
    if not FLAGS.output_dir:
        raise cli.InputError("--output_dir is required; give a new folder for the grown model")
    if FLAGS.new_tokens_file:
        file_paths.check_file_flag("new_tokens_file", FLAGS.new_tokens_file, "the token file")
        if FLAGS.num_new_tokens is not None:
            raise cli.InputError("--num_new_tokens chooses tokens from --input_file; drop it "
                                 "when --new_tokens_file lists them")
    elif not FLAGS.input_file or not FLAGS.num_new_tokens:
        raise cli.InputError("give --new_tokens_file, or --input_file with --num_new_tokens to "
                             "choose tokens from the domain's text")
    if FLAGS.num_new_tokens is not None and FLAGS.num_new_tokens < 1:
        raise cli.InputError("--num_new_tokens=%d: pass a positive number" % FLAGS.num_new_tokens)
    if FLAGS.min_count < 1:
        raise cli.InputError("--min_count=%d: pass a positive number" % FLAGS.min_count)
    if FLAGS.num_threads < 1:
        raise cli.InputError("--num_threads=%d: pass 1 or more" % FLAGS.num_threads)
    if FLAGS.eval_file:
        file_paths.check_file_flag("eval_file", FLAGS.eval_file, "a text file")


def check_output_dir(output_dir, inputs):
    """InputError unless ``output_dir`` is new (or empty) and holds none of the inputs."""
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        raise cli.InputError("--output_dir=%s already holds files; give a new folder (a model "
                             "is never written over another)" % output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise cli.InputError("--output_dir=%s is a file; give a new folder" % output_dir)
    outputs = [os.path.join(output_dir, name) for name in
               ("vocab.txt", "bert_config.json", REPORT)]
    file_paths.check_outputs_spare_inputs(outputs, inputs, "--output_dir")
    atomic.remove_stale_temporaries_of([output_dir])
    atomic.check_writable([atomic.temporary_name(output_dir)], "--output_dir")


def new_tokens(FLAGS, vocab, words):  # pylint: disable=invalid-name
    """(tokens, how they were chosen)."""
    if FLAGS.new_tokens_file:
        entries = extend.read_token_file(FLAGS.new_tokens_file, FLAGS.subchar)
        tokens = extend.check_new_tokens(entries, vocab, FLAGS.do_lower_case,
                                         FLAGS.continuation_tokens)
        how = "listed in %s" % FLAGS.new_tokens_file
        if FLAGS.subchar:
            how += " (NFKD-decomposed, as sub-character text is)"
        return tokens, how
    tokens, considered = extend.choose_tokens(
        words, vocab, FLAGS.num_new_tokens, FLAGS.tokenizer, FLAGS.min_count,
        FLAGS.num_threads)
    how = ("chosen from %s: the %d most often produced by the %s tokenizer among %d domain "
           "tokens the vocabulary splits into several pieces or [UNK] (the builder's BPE "
           "pieces of words seen %d+ times, and characters), %s"
           % (FLAGS.input_file, len(tokens), FLAGS.tokenizer, considered, FLAGS.min_count,
              "as many as asked" if len(tokens) == FLAGS.num_new_tokens else
              "fewer than the %d asked: no other candidate is ever produced"
              % FLAGS.num_new_tokens))
    return tokens, how


def evaluation(vocab_file, texts, FLAGS):  # pylint: disable=invalid-name
    """builder.evaluate's figures, without the progress bar."""
    return builder.evaluate(vocab_file, texts, FLAGS.do_lower_case, FLAGS.tokenizer,
                            FLAGS.subchar, progress=False)


def write_grown_model(staging, FLAGS, vocab, config, tokens, grown):  # pylint: disable=invalid-name
    """vocab.txt, bert_config.json and bert_model.ckpt in the folder ``staging``."""
    os.makedirs(staging)
    with open(os.path.join(staging, "vocab.txt"), "w", encoding="utf-8", newline="\n") as out:
        out.write(builder.vocab_text(list(vocab) + tokens))
    with open(os.path.join(staging, "bert_config.json"), "w", encoding="utf-8") as out:
        out.write(extend.grown_config_json(config, len(vocab) + len(tokens)))
    variables.write_checkpoint(grown, os.path.join(staging, "bert_model.ckpt"))


def main(_):
    FLAGS = flags.FLAGS  # pylint: disable=invalid-name
    check_flags(FLAGS)
    files = file_paths.glob_input_files(FLAGS.input_file) if FLAGS.input_file else []
    inputs = [FLAGS.vocab_file, FLAGS.bert_config_file] + files + (
        [FLAGS.new_tokens_file] if FLAGS.new_tokens_file else [])
    check_output_dir(FLAGS.output_dir, inputs)
    arrays = variables.read_variables(FLAGS.init_checkpoint)
    vocab, config = extend.load_model(FLAGS.vocab_file, FLAGS.bert_config_file, arrays,
                                      FLAGS.init_checkpoint)
    tokenization.check_case_matches_vocab(FLAGS.do_lower_case, vocab, FLAGS.vocab_file)
    extend.check_subchar_matches_vocab(FLAGS.subchar, vocab, FLAGS.vocab_file)

    lines, words = [], None
    if files:
        lines, words = extend.corpus_words(files, FLAGS.do_lower_case, FLAGS.subchar,
                                           FLAGS.input_sentence_size, FLAGS.seed, progress=True)
    tokens, how = new_tokens(FLAGS, vocab, words)
    ids = extend.piece_ids(tokens, vocab, FLAGS.tokenizer)
    grown, grown_names = extend.grow_arrays(arrays, list(ids.values()))
    frequencies = None
    if words is not None:
        frequencies = extend.count_tokens(words, list(vocab) + tokens, FLAGS.tokenizer)

    staging = atomic.temporary_name(FLAGS.output_dir)
    try:
        write_grown_model(staging, FLAGS, vocab, config, tokens, grown)
        report = collections.OrderedDict([
            ("output_dir", FLAGS.output_dir), ("init_checkpoint", FLAGS.init_checkpoint),
            ("vocab_file", FLAGS.vocab_file), ("old_vocab_size", len(vocab)),
            ("new_vocab_size", len(vocab) + len(tokens)), ("tokenizer", FLAGS.tokenizer),
            ("subchar", FLAGS.subchar), ("do_lower_case", FLAGS.do_lower_case),
            ("how_chosen", how), ("grown_variables", grown_names),
            ("row_rule", "mean of the rows (and output biases) of the old tokenizer's pieces"),
        ])
        texts = [text for text in (builder.read_eval_texts(FLAGS.eval_file)
                                   if FLAGS.eval_file else lines) if text.strip()]
        if texts:
            report["eval_text"] = FLAGS.eval_file or "the --input_file sample"
            report["eval_before"] = evaluation(FLAGS.vocab_file, texts, FLAGS)
            report["eval_after"] = evaluation(os.path.join(staging, "vocab.txt"), texts, FLAGS)
            report["eval_after"]["vocab_file"] = os.path.join(FLAGS.output_dir, "vocab.txt")
        report["tokens"] = extend.token_rows(tokens, ids, vocab, frequencies, FLAGS.subchar)
        with open(os.path.join(staging, REPORT), "w", encoding="utf-8") as out:
            out.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        if os.path.isdir(FLAGS.output_dir):
            os.rmdir(FLAGS.output_dir)  # checked empty above
        os.rename(staging, FLAGS.output_dir)
    except (OSError, tf.errors.OpError) as e:  # a full disk: ENOSPC, ResourceExhaustedError
        raise atomic.write_error(FLAGS.output_dir, e)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(extend.format_report(report))
    print("grown: %s; every other variable of %s written back unchanged"
          % (", ".join(grown_names), FLAGS.init_checkpoint))


if __name__ == "__main__":
    cli.run(main)
