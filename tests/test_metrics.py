"""metrics.py against values worked out by hand."""

import math

import numpy as np
import pytest

from krbert.classifier import metrics

# gold:      0 0 1 1 2 2 2
# predicted: 0 1 1 1 2 0 2
LABELS = [0, 0, 1, 1, 2, 2, 2]
PREDICTED = [0, 1, 1, 1, 2, 0, 2]


def test_accuracy():
    assert metrics.accuracy(LABELS, PREDICTED) == pytest.approx(5.0 / 7.0)
    assert metrics.accuracy([1, 0], [1, 0]) == 1.0
    assert metrics.accuracy([], []) == 0.0


def test_confusion_matrix_rows_are_gold_columns_predicted():
    matrix = metrics.confusion_matrix(LABELS, PREDICTED, 3)
    assert matrix.tolist() == [[1, 1, 0],
                               [0, 2, 0],
                               [1, 0, 2]]


def test_precision_recall_f1_per_class():
    precision, recall, f1, support = metrics.precision_recall_f1(LABELS, PREDICTED, 3)
    # class 0: TP 1, predicted 2, gold 2; class 1: TP 2, predicted 3, gold 2;
    # class 2: TP 2, predicted 2, gold 3.
    assert precision.tolist() == pytest.approx([0.5, 2.0 / 3.0, 1.0])
    assert recall.tolist() == pytest.approx([0.5, 1.0, 2.0 / 3.0])
    assert f1.tolist() == pytest.approx([0.5, 0.8, 0.8])
    assert support.tolist() == [2, 2, 3]


def test_macro_f1_is_the_unweighted_mean():
    assert metrics.macro_f1(LABELS, PREDICTED, 3) == pytest.approx(0.7)


def test_a_class_never_seen_scores_zero_not_nan():
    precision, recall, f1, _ = metrics.precision_recall_f1([0, 0], [0, 0], 2)
    assert precision.tolist() == [1.0, 0.0]
    assert recall.tolist() == [1.0, 0.0]
    assert f1.tolist() == [1.0, 0.0]
    assert metrics.macro_f1([0, 0], [0, 0], 2) == 0.5
    # Predicted but never gold: precision 0, recall 0 (no gold), F1 0.
    precision, recall, f1, _ = metrics.precision_recall_f1([0, 0], [0, 1], 2)
    assert precision.tolist() == [1.0, 0.0]
    assert recall.tolist() == [0.5, 0.0]
    assert f1.tolist() == pytest.approx([2.0 / 3.0, 0.0])


def test_cross_entropy():
    probabilities = [[0.5, 0.5], [0.25, 0.75]]
    expected = (-math.log(0.5) - math.log(0.75)) / 2
    assert metrics.cross_entropy([0, 1], probabilities) == pytest.approx(expected)
    # A zero probability is clipped instead of giving inf.
    assert math.isfinite(metrics.cross_entropy([0], [[0.0, 1.0]]))


def test_classification_report_from_probabilities():
    probabilities = np.eye(3)[PREDICTED] * 0.8 + 0.2 / 3
    report = metrics.classification_report(LABELS, probabilities, ["none", "offensive", "hate"])
    assert report["num_examples"] == 7
    assert report["accuracy"] == pytest.approx(5.0 / 7.0)
    assert report["macro_f1"] == pytest.approx(0.7)
    assert report["precision"]["offensive"] == pytest.approx(2.0 / 3.0)
    assert report["recall"]["hate"] == pytest.approx(2.0 / 3.0)
    assert report["f1"]["none"] == pytest.approx(0.5)
    assert report["support"] == {"none": 2, "offensive": 2, "hate": 3}
    p_right, p_wrong = 0.8 + 0.2 / 3, 0.2 / 3
    expected_loss = -(5 * math.log(p_right) + 2 * math.log(p_wrong)) / 7
    assert report["loss"] == pytest.approx(expected_loss)
    assert report["confusion_matrix"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]


def test_format_confusion_matrix_lines():
    lines = metrics.format_confusion_matrix(np.array([[3, 1], [0, 12]]), ["0", "1"])
    assert len(lines) == 3
    assert lines[0].split() == ["gold\\pred", "0", "1"]
    assert lines[1].split() == ["0", "3", "1"]
    assert lines[2].split() == ["1", "0", "12"]


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="num_classes"):
        metrics.confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="negative"):
        metrics.confusion_matrix([0, -1], [0, 1], 3)
