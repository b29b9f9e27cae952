r"""Builds a pretraining corpus from raw sources: Wikipedia dumps, plain text, JSON lines and
CSV/TSV files become one sentence a line, a blank line between documents (the input of
create_pretraining_data.py), in shards.

    python build_corpus.py --input_file='kowiki-latest-pages-articles.xml.bz2,comments.csv' \
        --column=comment --output_dir=corpus/ \
        --exclude_file=nsmc/test.tsv:document --exclude_file=nsmc/dev.tsv:document \
        --num_workers=16

Every input is streamed. Its format comes from its name (--format=auto: .xml[.bz2] a
MediaWiki dump, .jsonl JSON lines with --text_field, .csv/.tsv with --column, .txt plain
text) or from --format for all of them. Each paragraph is normalised (NFC, control and
zero-width characters removed, whitespace collapsed; optionally URLs and e-mail addresses
masked and long repeats shortened), split into sentences (kiwipiepy, only where a rule
cannot decide), filtered (--min_chars, --min_hangul), decontaminated against
--exclude_file, and deduplicated (sentences within a document, whole documents; optionally
near-duplicates with --near_dedup).

OUTPUT_DIR receives corpus-00000.txt, corpus-00001.txt, ... (--shard_size_mb each, cut at
document ends, each written under a temporary name and renamed when complete) and
corpus_stats.json; a table in the model card's terms (GB, documents, sentences, words) and
what each step removed are printed. A rerun with the same inputs and settings continues
after the finished shards (Ctrl-C says how many are kept). A run holds OUTPUT_DIR while it
writes (krbert.files.in_use): a second run into it stops in one line. The output never
replaces an input. No TensorFlow is needed.
"""

import os

from absl import flags

from krbert import cli
from krbert.corpus import build, dedup, sources, split, stats, writer
from krbert.files import atomic, in_use
from krbert.files import paths as file_paths

flags.DEFINE_string("input_file", None,
                    "Raw inputs: comma-separated files or globs (.bz2 and .gz are read "
                    "compressed), in order.")
flags.DEFINE_enum("format", "auto", ("auto",) + sources.FORMATS,
                  "auto: by file name (.xml[.bz2] wiki, .jsonl, .csv/.tsv, .txt); else the "
                  "format of every input.")
flags.DEFINE_string("output_dir", None, "Folder for the shards and corpus_stats.json.")
flags.DEFINE_enum("text_documents", "auto", sources.TEXT_DOCUMENTS,
                  "Plain text: 'blank_line' (blank lines between documents, each line a "
                  "paragraph), 'line' (a document a line), or 'auto' (blank_line when one of "
                  "the first 10,000 lines is blank).")
flags.DEFINE_string("text_field", "text", "JSON lines: the field holding the text.")
flags.DEFINE_string("column", None, "CSV/TSV (header line): the column holding the text.")
flags.DEFINE_string("delimiter", None, "CSV/TSV delimiter (default: tab for .tsv, else comma).")
flags.DEFINE_enum("splitter", "kiwi", split.SPLITTERS,
                  "Sentence splitting: kiwi (kiwipiepy where rules cannot decide), punct "
                  "(punctuation rules only), none (a paragraph is a sentence).")
flags.DEFINE_bool("mask_urls", False, "Replace URLs by [URL].")
flags.DEFINE_bool("mask_emails", False, "Replace e-mail addresses by [EMAIL].")
flags.DEFINE_integer("max_repeat", 0, "Cut a run of 1-2 characters repeated more often to this "
                     "many repeats (3: ㅋㅋㅋㅋㅋ -> ㅋㅋㅋ); 0 keeps repeats.")
flags.DEFINE_integer("min_chars", 2, "Drop sentences with fewer non-space characters.")
flags.DEFINE_float("min_hangul", 0.3, "Drop sentences in which Hangul is a smaller share of "
                   "the non-space characters (0 keeps all).")
flags.DEFINE_bool("near_dedup", False, "Also drop near-duplicate documents (MinHash LSH over "
                  "character 5-grams, datasketch).")
flags.DEFINE_float("near_dedup_threshold", 0.8, "Estimated Jaccard similarity from which a "
                   "document is a near-duplicate of an earlier one.")
flags.DEFINE_integer("near_dedup_num_perm", 128, "MinHash permutations.")
flags.DEFINE_multi_string("exclude_file", [],
                          "Evaluation texts to keep out of the corpus (repeatable): PATH (a "
                          "text a line) or PATH:COLUMN (TSV/CSV with a header line), e.g. "
                          "nsmc/test.tsv:document. A paragraph or sentence equal to one of "
                          "them after the same cleaning is dropped.")
flags.DEFINE_float("shard_size_mb", 256, "Start a new shard once one reaches this size.")
flags.DEFINE_integer("num_workers", 1, "Worker processes that clean and split.")
flags.DEFINE_bool("progress", True, "Show a progress bar on a terminal.")

FLAGS = flags.FLAGS


def settings_from_flags():
    """The settings that decide the corpus's content (recorded in corpus_stats.json)."""
    if FLAGS.min_chars < 0 or FLAGS.max_repeat < 0:
        raise cli.InputError("--min_chars and --max_repeat must be 0 or more")
    if not 0 <= FLAGS.min_hangul <= 1:
        raise cli.InputError("--min_hangul=%s: must be a share between 0 and 1" % FLAGS.min_hangul)
    if FLAGS.near_dedup and not 0 < FLAGS.near_dedup_threshold <= 1:
        raise cli.InputError("--near_dedup_threshold=%s: must be above 0 and at most 1"
                             % FLAGS.near_dedup_threshold)
    if FLAGS.near_dedup and FLAGS.near_dedup_num_perm < 2:
        raise cli.InputError("--near_dedup_num_perm=%d: MinHash needs 2 permutations or more; "
                             "pass e.g. 128 (the default)" % FLAGS.near_dedup_num_perm)
    sources.check_delimiter(FLAGS.delimiter)
    return {
        "text_documents": FLAGS.text_documents, "text_field": FLAGS.text_field,
        "column": FLAGS.column, "delimiter": FLAGS.delimiter, "splitter": FLAGS.splitter,
        "mask_urls": FLAGS.mask_urls, "mask_emails": FLAGS.mask_emails,
        "max_repeat": FLAGS.max_repeat, "min_chars": FLAGS.min_chars,
        "min_hangul": FLAGS.min_hangul, "near_dedup": FLAGS.near_dedup,
        "near_dedup_threshold": FLAGS.near_dedup_threshold,
        "near_dedup_num_perm": FLAGS.near_dedup_num_perm,
    }


def check_libraries(settings, inputs):
    """One line naming the missing library a setting or an input needs."""
    needs = []
    if settings["splitter"] == "kiwi" and split.kiwi_missing_reason():
        needs.append(("kiwipiepy", "--splitter=kiwi", "or pass --splitter=punct"))
    if any(fmt == "wiki" for _, fmt in inputs):
        needs.append(("mwparserfromhell", "a MediaWiki dump", ""))
    if settings["near_dedup"]:
        needs.append(("datasketch", "--near_dedup", ""))
    for module, what, otherwise in needs:
        try:
            __import__(module)
        except ImportError:
            raise cli.InputError("%s needs the Python package %s, which is not installed: pip "
                                 "install %s (requirements/corpus.txt)%s"
                                 % (what, module, module, " " + otherwise if otherwise else ""))


def check_near_dedup(settings):
    """One line when datasketch cannot build its index for --near_dedup_num_perm and
    --near_dedup_threshold (too few permutations, or a threshold too close to 1)."""
    if not settings["near_dedup"]:
        return
    try:
        dedup.NearDuplicates(settings["near_dedup_threshold"], settings["near_dedup_num_perm"])
    except ValueError as e:
        raise cli.InputError("--near_dedup_num_perm=%d with --near_dedup_threshold=%s: datasketch "
                             "cannot band the signatures (%s); lower --near_dedup_threshold or "
                             "raise --near_dedup_num_perm" % (settings["near_dedup_num_perm"],
                                                    settings["near_dedup_threshold"], e))


def check_outputs(output_dir, paths):
    """Creates OUTPUT_DIR; refuses when a shard or the stats file would replace an input."""
    if os.path.isfile(output_dir):
        raise cli.InputError("--output_dir=%s is a file; pass a folder" % output_dir)
    atomic.check_writable([writer.stats_path(output_dir)], "--output_dir")
    outputs = [writer.stats_path(output_dir)]
    for path in paths:
        name = os.path.basename(path)
        if writer.SHARD_PATTERN.match(name):
            outputs.append(os.path.join(output_dir, name))
    file_paths.check_outputs_spare_inputs(outputs, paths, "--output_dir")


def main(argv):
    if len(argv) > 1:
        raise cli.InputError("unexpected arguments %s; every setting is a --flag"
                             % " ".join(argv[1:]))
    if not FLAGS.input_file or not FLAGS.output_dir:
        raise cli.InputError("--input_file and --output_dir are required")
    if FLAGS.num_workers < 1:
        raise cli.InputError("--num_workers=%d: must be 1 or more" % FLAGS.num_workers)
    cli.check_positive_number("shard_size_mb", FLAGS.shard_size_mb)
    settings = settings_from_flags()
    paths = file_paths.glob_input_files(FLAGS.input_file, "--input_file")
    inputs = [(path, sources.format_of(path, FLAGS.format)) for path in paths]
    check_libraries(settings, inputs)
    check_near_dedup(settings)
    excluded = [build.parse_exclude_spec(spec)[0] for spec in FLAGS.exclude_file]
    check_outputs(FLAGS.output_dir, paths + excluded)
    try:
        exclusions, exclusion_report = build.read_exclusions(FLAGS.exclude_file, settings)
    except KeyboardInterrupt:
        raise cli.InputError("interrupted while reading --exclude_file, before anything was "
                             "written; rerun the command")
    builder = build.CorpusBuilder(inputs, FLAGS.output_dir, settings, exclusions,
                                  exclusion_report, num_workers=FLAGS.num_workers,
                                  shard_bytes=int(FLAGS.shard_size_mb * (1 << 20)),
                                  show_progress=FLAGS.progress)
    with in_use.claimed([FLAGS.output_dir], "--output_dir"):
        try:
            report = builder.run()
        except KeyboardInterrupt:
            raise cli.InputError(builder.interrupted_message())
    print(stats.summary(report))


if __name__ == "__main__":
    cli.run(main)
