"""From start and end logits to answer texts: the original BERT ``run_squad.py``'s
``write_predictions`` and ``get_final_text``, same choices and same outputs (no flags).

For each question: the n_best_size highest start and end logits of every window, kept when
both fall on context tokens, the start is scored in that window (max context), end >= start
and the span has at most max_answer_length tokens; ranked by start + end logit; each span's
text is the original context's characters (``get_final_text``), duplicates dropped, until
n_best_size answers. With SQuAD 2.0 the null answer competes (the smallest [CLS] score over
the windows) and the question gets "" when null score - best non-null score exceeds the
threshold. Output files, as the original writes them: predictions.json {id: text},
nbest_predictions.json {id: [{text, probability, start_logit, end_logit}]}, null_odds.json
{id: score difference} (SQuAD 2.0 only), each ``json.dumps(..., indent=4)`` and a newline.
"""

import collections
import json
import math

from krbert.files import atomic
from krbert.tf_compat import tf
from krbert.tokenizers.wordpiece import BasicTokenizer

RawResult = collections.namedtuple("RawResult", "unique_id start_logits end_logits")
"""start_logits, end_logits: lists of Python floats, one per position of the window."""

Candidate = collections.namedtuple("Candidate",
                                   "feature_index start_index end_index start_logit end_logit")
Answer = collections.namedtuple("Answer", "text start_logit end_logit")
PostprocessSettings = collections.namedtuple(
    "PostprocessSettings", "n_best_size max_answer_length do_lower_case "
    "version_2_with_negative null_score_diff_threshold verbose_logging", defaults=(False,))
"""verbose_logging (run_squad.py --verbose_logging): log why an answer's characters could
not be aligned with the context's, when get_final_text falls back to the whole words."""


# ---------------------------------------------------------------------------------------
# Projection back to the text


def _without_spaces(text):
    """(text without " ", {index there: index in text})."""
    kept, where = [], {}
    for index, char in enumerate(text):
        if char != " ":
            where[len(kept)] = index
            kept.append(char)
    return "".join(kept), where


def get_final_text(pred_text, orig_text, do_lower_case, verbose_logging=False):
    """The part of ``orig_text`` (the context's words a span covers, space-joined) that
    the normalised prediction ``pred_text`` stands for; ``orig_text`` itself when the
    characters cannot be aligned (logged with ``verbose_logging``).

    ``orig_text`` is basic-tokenized (split on punctuation, lower-cased and de-accented
    with do_lower_case); ``pred_text`` must occur in it, and without spaces both must have
    the same length: then character i of one is character i of the other.
    """
    def fall_back(why):
        if verbose_logging:
            tf.logging.info("Answer %r kept as the whole words %r: %s", pred_text, orig_text,
                            why)
        return orig_text

    tok_text = " ".join(BasicTokenizer(do_lower_case=do_lower_case).tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return fall_back("not found in the basic-tokenized words %r" % tok_text)
    end = start + len(pred_text) - 1
    orig_chars, orig_where = _without_spaces(orig_text)
    tok_chars, tok_where = _without_spaces(tok_text)
    if len(orig_chars) != len(tok_chars):
        return fall_back("%d characters without spaces, %d after basic tokenization"
                         % (len(orig_chars), len(tok_chars)))
    tok_index = {position: index for index, position in tok_where.items()}
    if start not in tok_index or tok_index[start] not in orig_where:
        return fall_back("its first character has no place in the words")
    if end not in tok_index or tok_index[end] not in orig_where:
        return fall_back("its last character has no place in the words")
    return orig_text[orig_where[tok_index[start]]:orig_where[tok_index[end]] + 1]


def span_text(feature, example, start_index, end_index, do_lower_case,
              verbose_logging=False):
    """The answer text of tokens start_index..end_index of a window."""
    pieces = " ".join(feature.tokens[start_index:end_index + 1])
    pieces = pieces.replace(" ##", "").replace("##", "")
    pred_text = " ".join(pieces.strip().split())
    first = feature.token_to_orig_map[start_index]
    last = feature.token_to_orig_map[end_index]
    orig_text = " ".join(example.doc_tokens[first:last + 1])
    return get_final_text(pred_text, orig_text, do_lower_case, verbose_logging)


# ---------------------------------------------------------------------------------------
# Choosing answers


def best_indexes(logits, n_best_size):
    """Positions of the n_best_size largest logits, largest first (earlier first on ties)."""
    return sorted(range(len(logits)), key=lambda i: logits[i], reverse=True)[:n_best_size]


def softmax(scores):
    """Probabilities of a list of scores (Python floats, summed in order)."""
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    total = 0.0
    for value in exps:
        total += value
    return [value / total for value in exps]


def candidates_of(features, results, settings):
    """(valid span candidates of every window, the null candidate): the null candidate is
    the window with the smallest [CLS] start + end logit (first on ties)."""
    found = []
    null = None
    for feature_index, feature in enumerate(features):
        result = results[feature.unique_id]
        if settings.version_2_with_negative:
            score = result.start_logits[0] + result.end_logits[0]
            if null is None or score < null[0]:
                null = (score, Candidate(feature_index, 0, 0, result.start_logits[0],
                                         result.end_logits[0]))
        for start in best_indexes(result.start_logits, settings.n_best_size):
            for end in best_indexes(result.end_logits, settings.n_best_size):
                if (start >= len(feature.tokens) or end >= len(feature.tokens)
                        or start not in feature.token_to_orig_map
                        or end not in feature.token_to_orig_map
                        or not feature.token_is_max_context.get(start, False)
                        or end < start or end - start + 1 > settings.max_answer_length):
                    continue
                found.append(Candidate(feature_index, start, end, result.start_logits[start],
                                       result.end_logits[end]))
    return found, null


def nbest_answers(example, features, results, settings):
    """(the n-best answers, best first; the null score or None without SQuAD 2.0)."""
    found, null = candidates_of(features, results, settings)
    if null is not None:
        found.append(null[1])
    found.sort(key=lambda c: c.start_logit + c.end_logit, reverse=True)
    seen = set()
    answers = []
    for candidate in found:
        if len(answers) >= settings.n_best_size:
            break
        text = ""
        if candidate.start_index > 0:
            text = span_text(features[candidate.feature_index], example,
                             candidate.start_index, candidate.end_index,
                             settings.do_lower_case, settings.verbose_logging)
            if text in seen:
                continue
        seen.add(text)
        answers.append(Answer(text, candidate.start_logit, candidate.end_logit))
    if null is not None and "" not in seen:
        answers.append(Answer("", null[1].start_logit, null[1].end_logit))
    if not answers:  # no valid span at all: the original's placeholder
        answers.append(Answer("empty", 0.0, 0.0))
    return answers, (null[0] if null is not None else None)


def predict_answers(examples, features, results, settings):
    """The original's three outputs as OrderedDicts keyed by question id, in the examples'
    order: (predictions, nbest, null_odds); null_odds is empty without SQuAD 2.0.

    Args:
      examples: reading.SquadExample list.
      features: the SpanFeatures of the examples (with tokens and maps).
      results: {unique_id: RawResult}.
      settings: PostprocessSettings.
    """
    by_example = collections.defaultdict(list)
    for feature in features:
        by_example[feature.example_index].append(feature)
    predictions = collections.OrderedDict()
    nbest = collections.OrderedDict()
    null_odds = collections.OrderedDict()
    for example_index, example in enumerate(examples):
        answers, null_score = nbest_answers(example, by_example[example_index], results,
                                            settings)
        probabilities = softmax([a.start_logit + a.end_logit for a in answers])
        nbest[example.qas_id] = [
            collections.OrderedDict([("text", a.text), ("probability", p),
                                     ("start_logit", a.start_logit),
                                     ("end_logit", a.end_logit)])
            for a, p in zip(answers, probabilities)]
        if not settings.version_2_with_negative:
            predictions[example.qas_id] = answers[0].text
            continue
        best = next((a for a in answers if a.text), None)
        if best is None:
            null_odds[example.qas_id] = 0.0
            predictions[example.qas_id] = ""
            continue
        null_odds[example.qas_id] = null_score - best.start_logit - best.end_logit
        above = null_odds[example.qas_id] > settings.null_score_diff_threshold
        predictions[example.qas_id] = "" if above else best.text
    return predictions, nbest, null_odds


def write_json(path, value):
    """``json.dumps(value, indent=4)`` and a newline, written whole."""
    with atomic.atomic_write(path) as writer:
        writer.write(json.dumps(value, indent=4) + "\n")
    tf.logging.info("Wrote %s", path)
