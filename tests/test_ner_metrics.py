"""KLUE-NER scores (krbert/tagging/metrics.py) on hand-made cases."""

import pytest

from krbert.tagging import klue, metrics


def test_entities_are_strict_iob2_runs():
    assert metrics.entities(["B-PS", "I-PS", "O", "B-LC", "B-LC", "I-LC"]) == [
        ("PS", 0, 1), ("LC", 3, 3), ("LC", 4, 5)]
    assert metrics.entities(["I-PS", "I-PS", "O"]) == []  # no B-: no entity
    assert metrics.entities(["B-PS", "I-LC", "I-LC"]) == [("PS", 0, 0)]
    assert metrics.entities(["O", "B-QT"]) == [("QT", 1, 1)]


def test_entity_scores_count_exact_span_and_type():
    gold = [["B-PS", "I-PS", "O", "B-LC"], ["B-DT", "I-DT"]]
    predicted = [["B-PS", "I-PS", "O", "B-OG"], ["B-DT", "O"]]
    scores = metrics.entity_scores(gold, predicted)
    # gold PS(0-1) LC(3) DT(0-1); predicted PS(0-1) OG(3) DT(0): one of three right
    assert scores["entity_precision"] == pytest.approx(100 / 3)
    assert scores["entity_recall"] == pytest.approx(100 / 3)
    assert scores["entity_f1"] == pytest.approx(100 / 3)
    assert (scores["num_gold_entities"], scores["num_predicted_entities"]) == (3, 3)
    # per type: PS 100, LC 0 (missed), OG 0 (spurious), DT 0 (wrong end)
    assert scores["f1_PS"] == 100 and scores["f1_DT"] == 0
    assert scores["entity_macro_f1"] == pytest.approx(25.0)
    assert "f1_TI" not in scores


def test_char_macro_f1_counts_every_label_and_one_for_absent_ones():
    gold = [["B-PS", "I-PS", "O", "B-LC"]]
    predicted = [["B-PS", "I-PS", "O", "B-OG"]]
    # B-PS, I-PS, O right (F1 1); B-LC missed and B-OG spurious (0); the 8 other labels are
    # in neither (1, as zero_division=1 gives)
    assert metrics.char_macro_f1(gold, predicted) == pytest.approx(100 * 11 / 13)
    # one of two O right, one B-PS predicted for an O
    gold, predicted = [["O", "O", "B-PS"]], [["O", "B-PS", "B-PS"]]
    expected = (2 * 1 / 3 + 2 * 1 / 3 + 11) / 13  # O: 2*1/(2+1); B-PS: 2*1/(1+2)
    assert metrics.char_macro_f1(gold, predicted) == pytest.approx(100 * expected)


def test_ner_scores_leave_spaces_out():
    sentence = klue.Sentence("s", list("김 씨 가"), ["B-PS", "I-PS", "I-PS", "O", "O"], 1, [])
    # the space tags do not count: only 김 씨 가 are scored
    predicted = ["B-PS", "O", "I-PS", "I-LC", "O"]
    scores = metrics.ner_scores([sentence], [predicted])
    assert scores["entity_f1"] == 100.0 and scores["char_macro_f1"] == 100.0
    assert scores["num_sentences"] == 1
