"""KorQuAD 1.0's exact match and F1 on hand-made cases, and (optionally) against the official
evaluate-v1.0.py on predictions made from the real answers.

Set KORQUAD_EVALUATE to the official script (korquad.github.io/dataset/evaluate-v1.0.py,
kept outside this repository) to compare to the last digit on the data's KorQuAD file.
"""

import json
import os
import random
import subprocess
import sys

import pytest

from krbert.span import metrics, reading


@pytest.mark.parametrize("text, normal", [
    ("《서울》", "서울"),
    ("(주)삼성전자", "주 삼성전자"),
    ("‘한강’의 기적", "한강 의 기적"),
    ("1,000원!", "1000원"),
    ("  ABC  Seoul ", "abc seoul"),
    ("〈님의 침묵〉", "님의 침묵"),
    ("“서울”", "“서울”"),  # curly double quotes are not in the official list
    ("", ""),
])
def test_normalisation(text, normal):
    assert metrics.normalize_answer(text) == normal


def test_exact_match_and_character_f1():
    assert metrics.exact_match_score("《서울》", "서울")
    assert not metrics.exact_match_score("서울특별시", "서울")
    # 2 shared characters of 5 predicted and 2 gold: precision 0.4, recall 1.0
    assert metrics.f1_score("서울특별시", "서울") == 2 * 0.4 * 1.0 / (0.4 + 1.0)
    # spaces do not count: "주 삼성" and "주삼성" share all three characters
    assert metrics.f1_score("(주)삼성", "주삼성") == 1.0
    assert not metrics.exact_match_score("(주)삼성", "주삼성")
    # characters as multisets: "가가나" vs "가나나" share 가 and 나 once each
    assert metrics.f1_score("가가나", "가나나") == pytest.approx(2 / 3)
    assert metrics.f1_score("부산", "서울") == 0
    assert metrics.f1_score("", "서울") == 0


def test_scores_take_the_best_gold_answer_and_count_missing_predictions():
    gold = [("q1", ["서울", "서울특별시"]), ("q2", ["1997년"]), ("q3", ["한강"])]
    scores = metrics.korquad_scores(gold, {"q1": "서울특별시", "q2": "1997"})
    assert scores["exact_match"] == 100.0 * 1 / 3
    assert scores["f1"] == 100.0 * (1.0 + 2 * 1.0 * 0.8 / 1.8) / 3
    assert (scores["total"], scores["unanswered"]) == (3, 1)


def perturbed_predictions(answers, seed=7):
    """Predictions made from the gold answers: exact, with a particle, cut, bracketed,
    another question's answer, empty, or missing."""
    rng = random.Random(seed)
    texts = [golds[0] for _, golds in answers]
    predictions = {}
    for qas_id, golds in answers:
        gold = rng.choice(golds)
        kind = rng.randrange(8)
        if kind == 7:
            continue
        predictions[qas_id] = [gold, gold + "에서", gold[:max(1, len(gold) // 2)],
                               "《%s》" % gold, "(%s)," % gold.upper(), rng.choice(texts),
                               "", " %s  의 " % gold][kind]
    return predictions


def test_same_figures_as_the_official_script(data_dir, tmp_path):
    script = os.environ.get("KORQUAD_EVALUATE")
    if not script:
        pytest.skip("KORQUAD_EVALUATE (KorQuAD's official evaluate-v1.0.py) is not set")
    dataset = os.path.join(data_dir, "korquad", "KorQuAD_v1.0_dev.json")
    answers = reading.read_squad_examples(dataset, is_training=False).answers
    predictions = perturbed_predictions(answers)
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(predictions, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([sys.executable, script, dataset, str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    official = json.loads(done.stdout.strip().splitlines()[-1])
    ours = metrics.korquad_scores(answers, predictions)
    assert 0 < official["f1"] < 100 and official["exact_match"] < official["f1"]
    assert repr(ours["exact_match"]) == repr(official["exact_match"])
    assert repr(ours["f1"]) == repr(official["f1"])
