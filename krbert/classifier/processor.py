"""The base of a fine-tuning task: its rows (InputExample, Split) and ``Processor``, which
reads a split of one text or a pair, to a class or a score (tasks.py registers the tasks).
"""

import collections
import os

from krbert import cli
from krbert.files import paths, reading
from krbert.tf_compat import tf


InputExample = collections.namedtuple("InputExample",
                                      ["guid", "text", "label", "line", "text_b"],
                                      defaults=(None,))
"""One row: guid (id column or 1-based row number), text, label (a class name, a float
score, or None when unlabelled), line (1-based line in its file, for messages; the entry
number in a JSON list) and text_b (the second text of a pair, None for one text)."""

Split = collections.namedtuple("Split", ["name", "path", "examples", "has_labels"])


class Processor(object):
    """A classification or regression task read from tab-separated files.

    Subclasses set the class attributes below; ``files`` maps a split to the file names
    accepted for it, the first being the preferred one. ``labels`` are the class names
    (a score task has none and one output).
    """

    name = None
    labels = ()
    files = {}
    id_column = None
    text_column = None
    text_b_column = None
    label_column = None
    label_type = "class"
    score_range = None
    quote_rounds = {}
    headline_metric = "accuracy"

    @property
    def is_pair(self):
        """True for a task of sentence pairs ([CLS] a [SEP] b [SEP])."""
        return self.text_b_column is not None

    @property
    def is_regression(self):
        """True for a task whose label is a number (one output, mean squared error)."""
        return self.label_type == "score"

    @property
    def num_outputs(self):
        """The classifier's outputs: 1 for a score, else one per class."""
        return 1 if self.is_regression else len(self.labels)

    def label_value(self, label):
        """What the feature cache stores for a label: its class id (0 when unlabelled), or
        the score as a float."""
        if self.is_regression:
            return float(label or 0.0)
        return self.labels.index(label) if label is not None else 0

    def parse_label(self, value, path, number):
        """The label of one cell: a class name of ``labels``, or a float in
        ``score_range``; InputError naming path:line otherwise."""
        if not self.is_regression:
            if value not in self.labels:
                raise cli.InputError(
                    "%s:%d: label '%s' is not one of %s for task %s (column '%s'); fix or "
                    "remove the row" % (path, number, value, ", ".join(self.labels),
                                        self.name.upper(), self.label_column))
            return value
        try:
            score = float(value)
        except ValueError:
            score = None
        low, high = self.score_range or (float("-inf"), float("inf"))
        if score is None or not low <= score <= high:
            raise cli.InputError(
                "%s:%d: score '%s' (column '%s') is not a number from %g to %g, as %s reads "
                "it; fix or remove the row" % (path, number, value, self.label_column, low,
                                                high, self.flag_text))
        return score

    def read_rows(self, path, required, optional):
        """Yields (line, {column: text}) of one file (tab-separated here)."""
        return reading.read_tsv(path, required, optional, self.quote_rounds)

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
        return Split(split, path, *self.read_examples(path, need_labels))

    def read_examples(self, path, need_labels):
        """(examples, has_labels) of one file."""
        optional = [c for c in (self.id_column, self.label_column)
                    if c and (c != self.label_column or not need_labels)]
        required = [c for c in (self.text_column, self.text_b_column) if c]
        required += [self.label_column] if need_labels else []
        examples = []
        has_labels = None
        for number, row in self.read_rows(path, required, optional):
            label = row.get(self.label_column)
            if has_labels is None:
                has_labels = label is not None
            if label is not None:
                label = self.parse_label(label, path, number)
            guid = row.get(self.id_column) or str(len(examples) + 1)
            text_b = row[self.text_b_column] if self.text_b_column else None
            examples.append(InputExample(guid, row[self.text_column], label, number, text_b))
        return examples, bool(has_labels)
