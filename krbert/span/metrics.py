"""KorQuAD 1.0's exact match and F1, as its official evaluation (evaluate-v1.0.py) computes
them (no flags).

An answer is normalised by turning the quotes and brackets ' " 《 》 < > 〈 〉 ( ) ‘ ’ into
spaces, lower-casing, deleting ASCII punctuation (Python's ``string.punctuation``) and
collapsing whitespace runs. Exact match: the normalised prediction equals a normalised gold
answer. F1 counts characters, not words: the characters of the normalised texts without
their spaces, as multisets. Each question scores its best gold answer; a question without a
prediction scores 0; the figures are percentages over every question, summed in the file's
order so that they equal the official script's to the last digit.
"""

import collections
import string

_TO_SPACE = frozenset(u"'\"《》<>〈〉()‘’")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text):
    """KorQuAD 1.0's normalised form of an answer."""
    spaced = "".join(" " if char in _TO_SPACE else char for char in text)
    kept = "".join(char for char in spaced.lower() if char not in _PUNCTUATION)
    return " ".join(kept.split())


def answer_chars(text):
    """The characters of the normalised text, spaces left out."""
    return [char for char in normalize_answer(text) if char != " "]


def exact_match_score(prediction, gold):
    """True when the normalised texts are equal."""
    return normalize_answer(prediction) == normalize_answer(gold)


def f1_score(prediction, gold):
    """Character-level F1 of the normalised texts (0 when they share no character)."""
    predicted, wanted = answer_chars(prediction), answer_chars(gold)
    same = sum((collections.Counter(predicted) & collections.Counter(wanted)).values())
    if same == 0:
        return 0
    precision = 1.0 * same / len(predicted)
    recall = 1.0 * same / len(wanted)
    return (2 * precision * recall) / (precision + recall)


def korquad_scores(gold_answers, predictions):
    """Exact match and F1 over every question, in percent.

    Args:
      gold_answers: list of (question id, [gold answer texts]) in the file's order.
      predictions: {question id: predicted text}.

    Returns:
      dict: exact_match, f1 (floats), total (questions), unanswered (questions without
      a prediction, scored 0).
    """
    exact_match = f1 = 0
    unanswered = 0
    for qas_id, golds in gold_answers:
        if qas_id not in predictions:
            unanswered += 1
            continue
        prediction = predictions[qas_id]
        exact_match += max(exact_match_score(prediction, gold) for gold in golds)
        f1 += max(f1_score(prediction, gold) for gold in golds)
    total = len(gold_answers)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total,
            "total": total, "unanswered": unanswered}
