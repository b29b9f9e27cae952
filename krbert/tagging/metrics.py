"""KLUE-NER scores of predicted character tags against gold ones (pure Python, no flags).

Both work on the characters of each sentence without its spaces, as KLUE's evaluation
does (klue_baseline: spaces are dropped from the character sequence it scores).

- Entity-level scores: an entity is a maximal ``B-X I-X ...`` run (strict IOB2, as
  seqeval's ``mode="strict", scheme=IOB2`` reads tags: an ``I-X`` that does not continue an
  ``X`` entity starts none). A predicted entity is right when its type, first and last
  character equal a gold entity's. ``entity_f1`` is the micro F1 over all entities (the
  usual NER figure, seqeval's default average); ``entity_macro_f1`` is KLUE's headline
  entity figure: the mean over the types present in gold or prediction of each type's F1.
- ``char_macro_f1``: KLUE's character-level macro F1, as klue_baseline computes it with
  scikit-learn (``f1_score(gold, predicted, labels=<all 13 labels>, average="macro",
  zero_division=1)``): for each of the 13 labels (O included) F1 = 2 TP / (gold + predicted)
  characters with that label, 1 for a label that is in neither, then the mean.

Scores are percentages (0-100), as KLUE reports them.
"""

import collections

from krbert.tagging import klue


def entities(tags):
    """The (type, first, last) character spans of the strict IOB2 entities in ``tags``."""
    found, open_entity = [], None
    for position, tag in enumerate(tags):
        kind = klue.entity_type(tag)
        if open_entity and tag == "I-" + open_entity[0]:
            open_entity[2] = position
            continue
        if open_entity:
            found.append(tuple(open_entity))
            open_entity = None
        if tag.startswith("B-"):
            open_entity = [kind, position, position]
    if open_entity:
        found.append(tuple(open_entity))
    return found


def _f1(correct, predicted, gold):
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def drop_spaces(chars, tags):
    """The tags of the characters that are not spaces (what KLUE scores)."""
    return [tag for char, tag in zip(chars, tags) if char != " "]


def entity_scores(gold_lists, predicted_lists):
    """Entity-level precision, recall and F1 (micro), KLUE's entity macro F1 and each
    type's F1, from per-sentence tag lists (spaces already dropped).

    Returns:
      dict: entity_precision, entity_recall, entity_f1, entity_macro_f1,
      f1_<TYPE> (for every type present), num_gold_entities, num_predicted_entities.
    """
    counts = collections.defaultdict(lambda: [0, 0, 0])  # type -> correct, predicted, gold
    for gold_tags, predicted_tags in zip(gold_lists, predicted_lists):
        gold = set(entities(gold_tags))
        predicted = set(entities(predicted_tags))
        for entity in predicted:
            counts[entity[0]][1] += 1
            counts[entity[0]][0] += int(entity in gold)
        for entity in gold:
            counts[entity[0]][2] += 1
    correct, predicted, gold = (sum(c[i] for c in counts.values()) for i in range(3))
    scores = {"entity_precision": 100.0 * correct / predicted if predicted else 0.0,
              "entity_recall": 100.0 * correct / gold if gold else 0.0,
              "entity_f1": 100.0 * _f1(correct, predicted, gold),
              "num_gold_entities": gold, "num_predicted_entities": predicted}
    per_type = {kind: 100.0 * _f1(*counts[kind]) for kind in klue.ENTITY_TYPES
                if kind in counts}
    scores["entity_macro_f1"] = (sum(per_type.values()) / len(per_type)) if per_type else 0.0
    for kind, value in per_type.items():
        scores["f1_%s" % kind] = value
    return scores


def char_macro_f1(gold_lists, predicted_lists, labels=klue.LABELS):
    """KLUE's character-level macro F1 (see the module) of per-sentence tag lists."""
    true_positive = collections.Counter()
    gold_count = collections.Counter()
    predicted_count = collections.Counter()
    for gold_tags, predicted_tags in zip(gold_lists, predicted_lists):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError("%d gold tags but %d predicted" % (len(gold_tags),
                                                               len(predicted_tags)))
        gold_count.update(gold_tags)
        predicted_count.update(predicted_tags)
        true_positive.update(g for g, p in zip(gold_tags, predicted_tags) if g == p)
    scores = []
    for label in labels:
        total = gold_count[label] + predicted_count[label]
        scores.append(2.0 * true_positive[label] / total if total else 1.0)
    return 100.0 * sum(scores) / len(scores)


def ner_scores(sentences, predicted_tag_lists):
    """Every score of ``predicted_tag_lists`` (one tag per character, spaces included)
    against the gold tags of ``sentences`` (klue.Sentence): entity_scores' keys,
    char_macro_f1 and num_sentences."""
    gold = [drop_spaces(s.chars, s.tags) for s in sentences]
    predicted = [drop_spaces(s.chars, tags) for s, tags in zip(sentences, predicted_tag_lists)]
    scores = entity_scores(gold, predicted)
    scores["char_macro_f1"] = char_macro_f1(gold, predicted)
    scores["num_sentences"] = len(sentences)
    return scores
