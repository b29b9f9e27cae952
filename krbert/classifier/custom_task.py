"""``--task_name=custom``: a task from the user's own files, no code needed.

The data folder holds ``train``, ``dev`` and ``test`` files, each ``.tsv``, ``.csv`` or
``.jsonl`` (the first found in that order), with a header (or keys) naming the columns
given by --text_column, --text_b_column (a pair task) and --label_column. With
--label_type=class the classes are the distinct labels of the training file (sorted: as
numbers when every label is one, else as text); with --label_type=score the label is a
float (any finite number). The task is written to ``task.json`` in the model folder when
training starts, and read back from there by evaluation, prediction, export and
convert_checkpoint.py, so all of them use the training file's classes in its order.

Refused in one line: a missing column (``path:1``), a dev or test class training never saw
(``path:line``), --label_type=score on a label that is not a number (``path:line``).
"""

import collections
import json
import os

from krbert import cli
from krbert.classifier.processor import Processor
from krbert.files import atomic, reading
from krbert.tf_compat import tf

NAME = "custom"
TASK_FILE = "task.json"
"""The custom task's description in the model folder (run_classifier.py --output_dir)."""
EXTENSIONS = (".tsv", ".csv", ".jsonl")
LABEL_TYPES = ("class", "score")

CustomSpec = collections.namedtuple(
    "CustomSpec", "text_column text_b_column label_column label_type labels")
"""The columns and label type of a custom task, and its classes (None until read from the
training file or task.json)."""


def define_custom_task_flags(flags):
    """The flags of --task_name=custom, on an absl ``flags`` module."""
    flags.DEFINE_string("text_column", "text",
                        "--task_name=custom: the column (or JSON key) holding the text.")
    flags.DEFINE_string("text_b_column", None,
                        "--task_name=custom: the column of the second text of a pair "
                        "([CLS] text [SEP] text_b [SEP]); unset for one text.")
    flags.DEFINE_string("label_column", "label", "--task_name=custom: the label's column.")
    flags.DEFINE_enum("label_type", "class", list(LABEL_TYPES),
                      "--task_name=custom: class (the labels are class names) or score "
                      "(a number: one output, mean squared error, Pearson/Spearman).")


def spec_from_values(text_column, text_b_column, label_column, label_type):
    """A CustomSpec of flag values (classes not read yet)."""
    return CustomSpec(text_column, text_b_column or None, label_column, label_type, None)


class CustomProcessor(Processor):
    """A task on the user's files; see the module docstring."""

    name = NAME

    def __init__(self, spec):
        if spec is None:
            raise cli.InputError("--task_name=custom needs --text_column and --label_column "
                                 "(and --text_b_column for pairs, --label_type)")
        if spec.label_type not in LABEL_TYPES:
            raise cli.InputError("--label_type=%s is unknown; choose class or score"
                                 % spec.label_type)
        self.spec = spec
        self.text_column = spec.text_column
        self.text_b_column = spec.text_b_column
        self.label_column = spec.label_column
        self.label_type = spec.label_type
        self.labels = tuple(spec.labels or ())
        self.headline_metric = "spearman" if spec.label_type == "score" else "accuracy"

    @property
    def cache_fields(self):
        """Part of the feature cache's key: the columns and classes read."""
        return {"custom_task": self.to_json()}

    @property
    def files(self):
        return {split: tuple(split + ext for ext in EXTENSIONS)
                for split in ("train", "dev", "test")}

    @property
    def flag_text(self):
        flags = "--task_name=custom --text_column=%s" % self.text_column
        if self.text_b_column:
            flags += " --text_b_column=%s" % self.text_b_column
        return flags + " --label_column=%s --label_type=%s" % (self.label_column,
                                                               self.label_type)

    def read_rows(self, path, required, optional):
        if path.endswith(".csv"):
            return reading.read_csv(path, required, optional)
        if path.endswith(".jsonl"):
            return reading.read_jsonl(path, required, optional)
        return reading.read_tsv(path, required, optional)

    def find_file(self, data_dir, split):
        folder = data_dir
        for name in self.files.get(split, ()):
            if tf.io.gfile.exists(os.path.join(folder, name)):
                return os.path.join(folder, name)
        raise cli.InputError("--data_dir=%s: no %s file for --task_name=custom; expected %s "
                             "there" % (data_dir, split, " or ".join(self.files.get(split, ()))))

    def parse_label(self, value, path, number):
        if self.is_regression:
            try:
                score = float(value)
            except ValueError:
                score = None
            if score is None or score != score or score in (float("inf"), float("-inf")):
                raise cli.InputError(
                    "%s:%d: label '%s' (column '%s') is not a number, but --label_type=score; "
                    "pass --label_type=class for class labels, or fix the row"
                    % (path, number, value, self.label_column))
            return score
        if self.labels and value not in self.labels:
            raise cli.InputError(
                "%s:%d: label '%s' (column '%s') never appears in the training file (classes "
                "%s); fix the row or add the class to training" % (
                    path, number, value, self.label_column, ", ".join(self.labels)))
        return value

    def learn_labels(self, split):
        """Sets the classes from a training Split (sorted; as numbers if all are)."""
        if self.is_regression:
            return
        found = set(e.label for e in split.examples)
        try:
            ordered = sorted(found, key=float)
        except ValueError:
            ordered = sorted(found)
        if len(ordered) < 2:
            raise cli.InputError("%s: column '%s' holds %d class(es); a classifier needs at "
                                 "least 2 (or pass --label_type=score)"
                                 % (split.path, self.label_column, len(ordered)))
        self.labels = tuple(ordered)

    def to_json(self):
        return {"task": NAME, "text_column": self.text_column,
                "text_b_column": self.text_b_column, "label_column": self.label_column,
                "label_type": self.label_type, "labels": list(self.labels)}

    def save(self, folder):
        """Writes task.json into the model folder."""
        atomic.write_text_atomic(os.path.join(folder, TASK_FILE),
                                 json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")


def load_spec(folder):
    """The CustomSpec of task.json in a model folder; InputError when there is none."""
    path = os.path.join(folder, TASK_FILE)
    if not tf.io.gfile.exists(path):
        raise cli.InputError("%s not found: a --task_name=custom model folder holds the task "
                             "(its columns and classes) once trained; train it first "
                             "(run_classifier.py --do_train)" % path)
    try:
        with tf.io.gfile.GFile(path, "r") as handle:
            saved = json.loads(handle.read())
        return CustomSpec(saved["text_column"], saved["text_b_column"],
                          saved["label_column"], saved["label_type"],
                          tuple(saved["labels"]) or None)
    except (ValueError, KeyError, TypeError) as e:
        raise cli.InputError("%s: not a task file (%s); train the model again"
                             % (path, cli.error_reason(e)))
