"""Fine-tuning tasks: the registry and the readers of their tab-separated files.

A task (``get_processor("nsmc")``) knows its files, columns and labels and reads a split
into ``InputExample`` rows; a bad row stops with ``path:line`` and the row. Turning the
rows into model inputs is features.py's job.
"""

import collections
import csv
import os

from krbert import cli
from krbert.files import atomic, paths, reading
from krbert.tf_compat import tf


InputExample = collections.namedtuple("InputExample", ["guid", "text", "label", "line"])
"""One row: guid (id column or 1-based row number), text, label (None when unlabelled),
line (1-based line in its file, for messages)."""

Split = collections.namedtuple("Split", ["name", "path", "examples", "has_labels"])


class Processor(object):
    """A single-sentence classification task read from tab-separated files.

    Subclasses set the class attributes below; ``files`` maps a split to the file names
    accepted for it, the first being the preferred one.
    """

    name = None
    labels = ()
    files = {}
    id_column = None
    text_column = None
    label_column = None
    quote_rounds = {}
    headline_metric = "accuracy"

    @property
    def tag(self):
        """Names the task and label set (feature caches, logs)."""
        return self.name

    @property
    def flag_text(self):
        """The flags that choose this task and label set (messages)."""
        return "--task_name=%s" % self.name.upper()

    def write_extra_predictions(self, output_dir, split, predicted):
        """Writes the task's own prediction files into ``output_dir`` beside predictions.tsv,
        for ``split`` (a Split) and ``predicted`` (label ids [N]); returns their descriptions.
        A task has none unless it overrides this."""
        return []

    def find_file(self, data_dir, split):
        """Path of ``split`` in ``data_dir`` (or ``data_dir/<task>``); InputError if absent."""
        if split not in self.files:
            raise cli.InputError("task %s has no split '%s'; choose one of %s"
                                 % (self.name.upper(), split, ", ".join(sorted(self.files))))
        for folder in (data_dir, os.path.join(data_dir, self.name)):
            for file_name in self.files[split]:
                path = os.path.join(folder, file_name)
                if tf.io.gfile.exists(path):
                    paths.check_input_file(path)  # a folder is not the file
                    return path
        raise cli.InputError(
            "--data_dir=%s: no %s file for task %s; expected %s there (or in %s/)"
            % (data_dir, split, self.name.upper(), " or ".join(self.files[split]),
               os.path.join(data_dir, self.name)))

    def read_split(self, data_dir, split, need_labels=True):
        """Reads one split into a ``Split``; unlabelled files are allowed unless
        ``need_labels`` (training and evaluation need them)."""
        path = self.find_file(data_dir, split)
        optional = [c for c in (self.id_column, self.label_column)
                    if c and (c != self.label_column or not need_labels)]
        required = [self.text_column] + ([self.label_column] if need_labels else [])
        examples = []
        has_labels = None
        for number, row in reading.read_tsv(path, required, optional, self.quote_rounds):
            label = row.get(self.label_column)
            if has_labels is None:
                has_labels = label is not None
            if label is not None and label not in self.labels:
                raise cli.InputError(
                    "%s:%d: label '%s' is not one of %s for task %s (column '%s'); fix or "
                    "remove the row" % (path, number, label, ", ".join(self.labels),
                                        self.name.upper(), self.label_column))
            guid = row.get(self.id_column) or str(len(examples) + 1)
            examples.append(InputExample(guid, row[self.text_column], label, number))
        return Split(split, path, examples, bool(has_labels))


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


PROCESSORS = {"nsmc": NsmcProcessor, "hate": HateProcessor}


def get_processor(task_name, hate_label="hate"):
    """The task registered as ``task_name`` (case-insensitive)."""
    key = (task_name or "").strip().lower()
    if key not in PROCESSORS:
        raise cli.InputError("--task_name=%s is unknown; choose one of %s"
                             % (task_name, ", ".join(k.upper() for k in sorted(PROCESSORS))))
    if key == "hate":
        return HateProcessor(hate_label)
    return PROCESSORS[key]()


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
