"""Fine-tuning tasks: the registry and the readers of their files.

A task (``get_processor("nsmc")``) knows its files, columns, labels and headline metric
and reads a split into ``InputExample`` rows; a bad row stops with ``path:line`` and the
row. A task reads one text (NSMC, HATE) or a pair (KORNLI, KORSTS, KLUE_NLI, KLUE_STS:
``text_b_column``), and its label is a class or a score (``label_type``; a score is
read as a float and must lie in ``score_range``: a cell that is not a number or lies
outside is refused as ``path:line``, never kept). ``--task_name=custom`` reads the
columns the user names from train/dev/test .tsv, .csv or .jsonl files
(custom_task.py). Turning the rows into model inputs is features.py's job.

Every task also says how it is benchmarked: ``BENCHMARKS`` (krbert/benchmarks.py reads it).
"""

import csv
import os

from krbert import cli
from krbert.classifier import custom_task
from krbert.classifier.processor import InputExample, Processor, Split  # noqa: F401
from krbert.files import atomic, paths
from krbert.tf_compat import tf


class NsmcProcessor(Processor):
    """Naver Sentiment Movie Corpus: id, document, label (0 negative, 1 positive).

    The official files CSV-quote a document holding a double quote twice; both layers
    are undone.
    """

    name = "nsmc"
    labels = ("0", "1")
    files = {"train": ("train.tsv", "ratings_train.txt"),
             "dev": ("dev.tsv",),
             "test": ("test.tsv", "ratings_test.txt")}
    id_column = "id"
    text_column = "document"
    label_column = "label"
    quote_rounds = {"document": 2}


class HateProcessor(Processor):
    """Korean HateSpeech (kocohub): comments with hate, bias and gender-bias labels.

    ``label`` picks the target column: hate (none/offensive/hate, the Kaggle task),
    bias (none/gender/others) or gender (False/True, ``contain_gender_bias``).
    """

    name = "hate"
    files = {"train": ("train.tsv",),
             "dev": ("dev.tsv",),
             "test": ("test.no_label.tsv", "test.tsv")}
    text_column = "comments"
    headline_metric = "macro_f1"
    LABEL_SETS = {"hate": ("hate", ("none", "offensive", "hate")),
                  "bias": ("bias", ("none", "gender", "others")),
                  "gender": ("contain_gender_bias", ("False", "True"))}

    def __init__(self, label="hate"):
        if label not in self.LABEL_SETS:
            raise cli.InputError("--hate_label=%s is unknown; choose one of %s"
                                 % (label, ", ".join(sorted(self.LABEL_SETS))))
        self.label_kind = label
        self.label_column, self.labels = self.LABEL_SETS[label]

    @property
    def tag(self):
        return "hate-%s" % self.label_kind

    def write_extra_predictions(self, output_dir, split, predicted):
        """For the hate labels, ``submission.csv``: the Kaggle korean-hate-speech-detection
        file, header ``comments,label`` and a row per comment, label 0 none, 1 offensive,
        2 hate (the order of ``labels``)."""
        if self.label_kind != "hate":
            return []
        with atomic.atomic_write(os.path.join(output_dir, "submission.csv")) as writer:
            out = csv.writer(writer, lineterminator="\n")
            out.writerow(["comments", "label"])
            for example, label_id in zip(split.examples, predicted):
                out.writerow([example.text, int(label_id)])
        return ["submission.csv (label 0 none, 1 offensive, 2 hate)"]

    @property
    def flag_text(self):
        return "--task_name=HATE --hate_label=%s" % self.label_kind


class KorNliProcessor(Processor):
    """KorNLI (kakaobrain/KorNLUDatasets): sentence1, sentence2, gold_label.

    Trains on KorNLI's training sets when they are there (train.ko.tsv: MultiNLI and SNLI,
    942,854 pairs, written by scripts/download_data.sh), else on the XNLI dev set; scored
    on the XNLI test set (dev: the XNLI dev set). Texts are taken as written (no CSV
    unquoting: the files do not quote).
    """

    name = "kornli"
    labels = ("entailment", "neutral", "contradiction")
    files = {"train": ("train.ko.tsv", "xnli.dev.ko.tsv"),
             "dev": ("xnli.dev.ko.tsv",),
             "test": ("xnli.test.ko.tsv",)}
    text_column = "sentence1"
    text_b_column = "sentence2"
    label_column = "gold_label"
    quote_rounds = {"sentence1": 0, "sentence2": 0}


class KorStsProcessor(Processor):
    """KorSTS (kakaobrain/KorNLUDatasets): a 0-5 similarity score of two sentences.

    Columns genre, filename, year, id, score, sentence1, sentence2. Headline: Spearman.
    """

    name = "korsts"
    files = {"train": ("sts-train.tsv",), "dev": ("sts-dev.tsv",), "test": ("sts-test.tsv",)}
    id_column = "id"
    text_column = "sentence1"
    text_b_column = "sentence2"
    label_column = "score"
    label_type = "score"
    score_range = (0.0, 5.0)
    headline_metric = "spearman"
    quote_rounds = {"sentence1": 0, "sentence2": 0}


class KlueProcessor(Processor):
    """A KLUE task read from its JSON list files (klue-<task>-v1.1_{train,dev}.json).

    Without the training file (only the dev sets are shipped in ../shared/data), the dev
    file is carved by a fixed rule: its entries in blocks of CARVE_BLOCK in file order,
    every CARVE_EVERY-th block (blocks 4, 9, 14, ... from 0) held out as ``dev``, the rest
    ``train``. Blocks keep the pairs written from one premise together. Logged once.
    """

    CARVE_BLOCK = 10
    CARVE_EVERY = 5
    version = "v1.1"

    @property
    def files(self):
        return {split: ("klue-%s-%s_%s.json" % (self.name[5:], self.version, split),)
                for split in ("train", "dev")}

    def read_split(self, data_dir, split, need_labels=True):
        if split in self.files:
            try:
                train = self.find_file(data_dir, "train")
            except cli.InputError:
                train = None
            if train is None:
                path = self.find_file(data_dir, "dev")
                examples, has_labels = self.read_examples(path, need_labels)
                if not getattr(self, "_announced", False):
                    self._announced = True
                    tf.logging.info(
                        "%s: no %s in %s, so dev is carved: blocks of %d entries of %s, "
                        "every %dth block (4, 9, ... from 0) held out as dev, the rest train",
                        self.name.upper(), self.files["train"][0], data_dir, self.CARVE_BLOCK,
                        path, self.CARVE_EVERY)
                kept = [e for i, e in enumerate(examples)
                        if self.is_held_out(i) == (split == "dev")]
                return Split(split, path, kept, has_labels)
        return Processor.read_split(self, data_dir, split, need_labels)

    def is_held_out(self, index):
        """True for the dev entries (0-based ``index``) the carve keeps out of training."""
        return (index // self.CARVE_BLOCK) % self.CARVE_EVERY == self.CARVE_EVERY - 1

    def read_rows(self, path, required, optional):
        """Yields (entry number from 1, {column: text}) of a KLUE JSON list file; a nested
        key is written with dots (labels.label)."""
        import json

        paths.check_input_file(path)
        try:
            with tf.io.gfile.GFile(path, "rb") as handle:
                entries = json.loads(handle.read().decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise cli.InputError("%s: not a KLUE JSON file (%s); give the file as published"
                                 % (path, str(e).splitlines()[0]))
        if not isinstance(entries, list):
            raise cli.InputError("%s: not a KLUE JSON list of entries; give the file as "
                                 "published" % path)
        for number, entry in enumerate(entries, start=1):
            row = {}
            for column in list(required) + list(optional):
                value = entry
                for key in column.split("."):
                    value = value.get(key) if isinstance(value, dict) else None
                if value is None and column in required:
                    raise cli.InputError("%s: entry %d lacks '%s'; give the file as published"
                                         % (path, number, column))
                if value is not None:
                    row[column] = value if isinstance(value, str) else repr(value)
            yield number, row


class KlueNliProcessor(KlueProcessor):
    """KLUE-NLI: premise, hypothesis, gold_label (entailment / neutral / contradiction)."""

    name = "klue_nli"
    labels = ("entailment", "neutral", "contradiction")
    id_column = "guid"
    text_column = "premise"
    text_b_column = "hypothesis"
    label_column = "gold_label"


class KlueStsProcessor(KlueProcessor):
    """KLUE-STS: sentence1, sentence2, labels.label (0-5). Headline: Pearson, as KLUE."""

    name = "klue_sts"
    id_column = "guid"
    text_column = "sentence1"
    text_b_column = "sentence2"
    label_column = "labels.label"
    label_type = "score"
    score_range = (0.0, 5.0)
    headline_metric = "pearson"


PROCESSORS = {"nsmc": NsmcProcessor, "hate": HateProcessor, "kornli": KorNliProcessor,
              "korsts": KorStsProcessor, "klue_nli": KlueNliProcessor,
              "klue_sts": KlueStsProcessor}
CUSTOM = custom_task.NAME


def get_processor(task_name, hate_label="hate", custom=None):
    """The task registered as ``task_name`` (case-insensitive); ``custom`` (a
    custom_task.CustomSpec) describes --task_name=custom."""
    key = (task_name or "").strip().lower()
    if key == CUSTOM:
        return custom_task.CustomProcessor(custom)
    if key not in PROCESSORS:
        raise cli.InputError("--task_name=%s is unknown; choose one of %s or CUSTOM"
                             % (task_name, ", ".join(k.upper() for k in sorted(PROCESSORS))))
    if key == "hate":
        return HateProcessor(hate_label)
    return PROCESSORS[key]()


def registered_variants():
    """Every (task_name, hate_label) the registry knows, one per label set (HATE has three):
    what a checkpoint's folder may name in its feature caches."""
    variants = []
    for key in sorted(PROCESSORS):
        labels = sorted(HateProcessor.LABEL_SETS) if key == "hate" else ["hate"]
        variants += [(key, label) for label in labels]
    return variants


def _classifier_benchmark(name, folder, data_files, metrics, headline, extra=()):
    return dict(name=name, script="run_classifier.py",
                data_files=tuple("%s/%s" % (folder, f) for f in data_files),
                flags=("--task_name=%s" % name, "--data_dir={data_dir}/%s" % folder,
                       "--output_dir={output_dir}", "--do_train=true", "--do_eval=true")
                + tuple(extra), metrics=metrics, headline=headline)


BENCHMARKS = [
    # KorNLI here trains on XNLI dev, so it is scored on XNLI test only.
    _classifier_benchmark("KORNLI", "kornli", ("xnli.dev.ko.tsv", "xnli.test.ko.tsv"),
                          ("eval_accuracy", "eval_macro_f1"), "eval_accuracy",
                          ("--eval_split=test",)),
    _classifier_benchmark("KORSTS", "korsts", ("sts-train.tsv", "sts-dev.tsv", "sts-test.tsv"),
                          ("spearman", "pearson"), "spearman",
                          ("--do_predict=true", "--predict_split=test")),
    _classifier_benchmark("KLUE_NLI", "klue", ("klue-nli-v1.1_dev.json",),
                          ("eval_accuracy", "eval_macro_f1"), "eval_accuracy"),
    _classifier_benchmark("KLUE_STS", "klue", ("klue-sts-v1.1_dev.json",),
                          ("pearson", "spearman"), "pearson"),
]
"""scripts/evaluate.sh's classifier rows (krbert/benchmarks.py turns them into
Benchmark tuples): each task's files under DATA_DIR, flags, metrics and headline."""


def define_hate_label_flag(flags):
    """Defines --hate_label, which picks HATE's label set, on an absl ``flags`` module."""
    flags.DEFINE_enum("hate_label", "hate", sorted(HateProcessor.LABEL_SETS),
                      "HATE only: the label to predict: hate (none/offensive/hate), bias "
                      "(none/gender/others) or gender (contain_gender_bias False/True).")


def log_split(processor, split):
    """Logs the size of a split and how many of its texts are empty (they are kept)."""
    empty = sum(1 for e in split.examples if not e.text.strip())
    tf.logging.info("%s %s: %d examples from %s%s; %d empty text(s) kept", processor.tag,
                    split.name, len(split.examples), split.path,
                    "" if split.has_labels else " (no labels)", empty)
    return empty
