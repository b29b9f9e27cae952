"""Classification metrics in plain numpy: accuracy, confusion matrix, precision/recall/F1;
regression metrics: mean squared error, Pearson and Spearman correlation (scipy.stats).

Labels are integer class ids in ``[0, num_classes)``. Conventions (the usual ones, as in
scikit-learn with ``zero_division=0``):

- precision of class c = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic
  mean; a ratio whose denominator is 0 counts as 0.
- macro-F1 is the unweighted mean of the per-class F1 over all ``num_classes`` classes
  (a class absent from both gold and predictions therefore contributes 0).
"""

import numpy as np


def _as_ids(values, name):
    array = np.asarray(values, dtype=np.int64).reshape(-1)
    if array.size and array.min() < 0:
        raise ValueError("%s holds a negative class id" % name)
    return array


def accuracy(labels, predictions):
    """Fraction of positions where ``predictions`` equals ``labels`` (0.0 when empty)."""
    labels = _as_ids(labels, "labels")
    predictions = _as_ids(predictions, "predictions")
    if labels.shape != predictions.shape:
        raise ValueError("labels (%d) and predictions (%d) differ in length"
                         % (labels.size, predictions.size))
    if labels.size == 0:
        return 0.0
    return float(np.mean(labels == predictions))


def confusion_matrix(labels, predictions, num_classes):
    """int64 [C, C] counts: row = gold class, column = predicted class."""
    labels = _as_ids(labels, "labels")
    predictions = _as_ids(predictions, "predictions")
    if labels.shape != predictions.shape:
        raise ValueError("labels (%d) and predictions (%d) differ in length"
                         % (labels.size, predictions.size))
    if labels.size and max(labels.max(), predictions.max()) >= num_classes:
        raise ValueError("a class id is >= num_classes=%d" % num_classes)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def _safe_divide(numerator, denominator):
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros_like(numerator)
    nonzero = denominator > 0
    out[nonzero] = numerator[nonzero] / denominator[nonzero]
    return out


def precision_recall_f1(labels, predictions, num_classes):
    """Per-class scores from the confusion matrix.

    Returns:
      (precision, recall, f1, support): float64 [C] arrays and int64 [C] gold counts.
    """
    matrix = confusion_matrix(labels, predictions, num_classes)
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2.0 * precision * recall, precision + recall)
    return precision, recall, f1, support


def macro_f1(labels, predictions, num_classes):
    """Unweighted mean of the per-class F1 over all classes."""
    return float(np.mean(precision_recall_f1(labels, predictions, num_classes)[2]))


def cross_entropy(labels, probabilities, epsilon=1e-12):
    """Mean of -log p[label] over examples; ``probabilities`` is float [N, C]."""
    labels = _as_ids(labels, "labels")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if labels.size == 0:
        return 0.0
    picked = probabilities[np.arange(labels.size), labels]
    return float(np.mean(-np.log(np.maximum(picked, epsilon))))


def classification_report(labels, probabilities, label_names):
    """Every metric of one evaluation.

    Args:
      labels: int [N] gold class ids.
      probabilities: float [N, C] predicted class probabilities.
      label_names: the C class names, in class id order.

    Returns:
      dict with accuracy, loss, macro_f1, precision/recall/f1/support (dicts by class
      name) and confusion_matrix (int64 [C, C], rows gold, columns predicted).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(label_names))
    predictions = np.argmax(probabilities, axis=1) if len(probabilities) else np.zeros(0, int)
    num_classes = len(label_names)
    precision, recall, f1, support = precision_recall_f1(labels, predictions, num_classes)
    return {
        "num_examples": int(len(predictions)),
        "accuracy": accuracy(labels, predictions),
        "loss": cross_entropy(labels, probabilities),
        "macro_f1": float(np.mean(f1)),
        "precision": dict(zip(label_names, precision.tolist())),
        "recall": dict(zip(label_names, recall.tolist())),
        "f1": dict(zip(label_names, f1.tolist())),
        "support": dict(zip(label_names, support.tolist())),
        "confusion_matrix": confusion_matrix(labels, predictions, num_classes),
    }


def format_confusion_matrix(matrix, label_names):
    """The confusion matrix as aligned text lines: rows gold, columns predicted."""
    names = [str(name) for name in label_names]
    width = max([len(n) for n in names] + [len(str(int(v))) for v in np.ravel(matrix)] + [9])
    lines = ["%s %s" % ("gold\\pred".ljust(width), " ".join(n.rjust(width) for n in names))]
    for name, row in zip(names, np.asarray(matrix)):
        lines.append("%s %s" % (name.ljust(width), " ".join(str(int(v)).rjust(width)
                                                            for v in row)))
    return lines


def regression_report(labels, scores):
    """Every metric of one evaluation of a score task.

    Args:
      labels: float [N] gold scores.
      scores: float [N] (or [N, 1]) predicted scores.

    Returns:
      dict with num_examples, loss (mean squared error), pearson and spearman (scipy.stats;
      0.0 when either side is constant, where the correlation is undefined).
    """
    from scipy import stats

    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError("labels (%d) and scores (%d) differ in length"
                         % (labels.size, scores.size))
    constant = labels.size < 2 or np.ptp(labels) == 0 or np.ptp(scores) == 0
    return {
        "num_examples": int(labels.size),
        "loss": float(np.mean((labels - scores) ** 2)) if labels.size else 0.0,
        "pearson": 0.0 if constant else float(stats.pearsonr(labels, scores)[0]),
        "spearman": 0.0 if constant else float(stats.spearmanr(labels, scores)[0]),
    }
