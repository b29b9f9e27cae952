"""SQuAD-format JSON files (SQuAD 1.1/2.0, KorQuAD 1.0) read into examples (no flags).

``read_squad_examples`` gives the examples the original BERT ``run_squad.py`` gives for the
same file, in the same order: every context is split into words on whitespace (space, tab,
CR, LF and U+202F), and a training answer is kept only when its text, whitespace-normalised,
is found in the words its ``answer_start`` covers; others are skipped, counted and logged,
one warning per question naming the file and its id. A file that is not SQuAD-shaped
stops the run with one line naming the file and the place (InputError).
"""

import collections
import json

from krbert import cli
from krbert.tf_compat import tf

SquadExample = collections.namedtuple(
    "SquadExample", "qas_id question_text doc_tokens orig_answer_text start_position "
    "end_position is_impossible")
"""One question on one context. doc_tokens: the context's whitespace-split words (one list
shared by every question of a paragraph); start_position, end_position: word indexes of
the training answer (-1 when impossible, None when not training)."""

SquadFile = collections.namedtuple("SquadFile", "path examples num_skipped answers "
                                   "num_articles")
"""examples: list of SquadExample; num_skipped: training answers that did not match their
context; answers: [(qas_id, [gold answer texts])] of every question read, in the file's
order (what metrics.korquad_scores scores); num_articles: the articles read."""


def parse_article_range(flag, text):
    """The slice of articles that ``START:END`` names (Python slice syntax: ":100" the
    first 100, "100:" the rest; empty: all). InputError naming ``flag`` otherwise."""
    if not text:
        return slice(None)
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        bounds = [int(part) if part.strip() else None for part in parts]
    except ValueError:
        raise cli.InputError("--%s=%s: give START:END article numbers (Python slice "
                             "syntax), e.g. :100 for the first 100 articles or 100: for "
                             "the rest" % (flag, text))
    return slice(*bounds)


def is_squad_whitespace(char):
    """The original's word separators: space, tab, CR, LF and U+202F."""
    return char in " \t\r\n" or ord(char) == 0x202F


def split_context(text):
    """(words, char_to_word): the context's whitespace-separated words, and for every
    character the index of the word it belongs to (a separator: the word before it, -1
    before the first word)."""
    words = []
    char_to_word = []
    after_space = True
    for char in text:
        if is_squad_whitespace(char):
            after_space = True
        else:
            if after_space:
                words.append(char)
            else:
                words[-1] += char
            after_space = False
        char_to_word.append(len(words) - 1)
    return words, char_to_word


def load_squad_json(path):
    """The ``data`` list of a SQuAD-format file; InputError when unreadable or not JSON."""
    try:
        with tf.io.gfile.GFile(path, "r") as reader:
            text = reader.read()
    except tf.errors.NotFoundError:
        raise cli.InputError("%s not found; check the path" % path)
    except (tf.errors.OpError, OSError) as e:
        raise cli.InputError("%s cannot be read (%s)" % (path, cli.error_reason(e)))
    try:
        document = json.loads(text)
    except ValueError as e:
        raise cli.InputError("%s is not JSON (%s); give a SQuAD-format file such as "
                             "KorQuAD_v1.0_dev.json" % (path, e))
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise cli.InputError("%s is not SQuAD-shaped: it needs a top-level object with a "
                             "\"data\" list of articles (the SQuAD/KorQuAD format)" % path)
    return document["data"]


def _require(condition, path, where, what):
    if not condition:
        raise cli.InputError("%s is not SQuAD-shaped: %s %s (the SQuAD/KorQuAD format)"
                             % (path, where, what))


def check_shape(path, data):
    """InputError naming the first article, paragraph or question that lacks a field of the
    SQuAD format (paragraphs, context, qas, id, question, answers with text and
    answer_start)."""
    for a, article in enumerate(data):
        where = "data[%d]" % a
        _require(isinstance(article, dict) and isinstance(article.get("paragraphs"), list),
                 path, where, "has no \"paragraphs\" list")
        for p, paragraph in enumerate(article["paragraphs"]):
            where = "data[%d].paragraphs[%d]" % (a, p)
            _require(isinstance(paragraph, dict) and isinstance(paragraph.get("context"), str),
                     path, where, "has no \"context\" string")
            _require(isinstance(paragraph.get("qas"), list), path, where, "has no \"qas\" list")
            for q, qa in enumerate(paragraph["qas"]):
                where = "data[%d].paragraphs[%d].qas[%d]" % (a, p, q)
                _require(isinstance(qa, dict) and isinstance(qa.get("id"), str)
                         and isinstance(qa.get("question"), str), path, where,
                         "needs an \"id\" and a \"question\" string")
                for answer in qa.get("answers", []):
                    _require(isinstance(answer, dict) and isinstance(answer.get("text"), str)
                             and isinstance(answer.get("answer_start"), int), path,
                             "question %s" % qa["id"],
                             "has an answer without \"text\" and an integer \"answer_start\"")


def _training_answer(path, qa, words, char_to_word, version_2_with_negative):
    """(answer text, start word, end word, is_impossible) of a training question, or None
    when its answer does not match the context (logged)."""
    is_impossible = bool(qa.get("is_impossible", False)) if version_2_with_negative else False
    if is_impossible:
        return "", -1, -1, True
    answers = qa.get("answers")
    if not isinstance(answers, list) or len(answers) != 1:
        raise cli.InputError(
            "%s: question %s has %s answers; training needs exactly one per question "
            "(a dev file has several: train on a training file)"
            % (path, qa["id"], len(answers) if isinstance(answers, list) else "no"))
    answer = answers[0]
    text, offset = answer["text"], answer["answer_start"]
    end = offset + len(text) - 1
    if not text or offset < 0 or end >= len(char_to_word):
        tf.logging.warning("%s: question %s: answer_start %d is outside its context of %d "
                           "characters; skipped", path, qa["id"], offset, len(char_to_word))
        return None
    start_word, end_word = char_to_word[offset], char_to_word[end]
    actual = " ".join(words[start_word:end_word + 1])
    cleaned = " ".join(text.split())
    if actual.find(cleaned) == -1:
        tf.logging.warning("%s: question %s: answer %r is not the context's text at "
                           "answer_start %d (%r); skipped", path, qa["id"], cleaned, offset,
                           actual)
        return None
    return text, start_word, end_word, False


def read_squad_examples(path, is_training, version_2_with_negative=False,
                        articles=slice(None)):
    """Reads a SQuAD-format file.

    Args:
      path: the JSON file (gs:// too).
      is_training: read one answer per question and its word span; questions whose
        answer does not match the context are skipped and counted.
      version_2_with_negative: honour SQuAD 2.0's ``is_impossible``.
      articles: the slice of the file's articles to read (all by default).

    Returns:
      SquadFile.
    """
    data = load_squad_json(path)[articles]
    check_shape(path, data)
    examples = []
    answers = []
    skipped = 0
    for article in data:
        for paragraph in article["paragraphs"]:
            words, char_to_word = split_context(paragraph["context"])
            for qa in paragraph["qas"]:
                answers.append((qa["id"], [answer["text"] for answer in qa.get("answers", [])]))
                span = (None, None, None, False)
                if is_training:
                    span = _training_answer(path, qa, words, char_to_word,
                                            version_2_with_negative)
                    if span is None:
                        skipped += 1
                        continue
                examples.append(SquadExample(qa["id"], qa["question"], words, *span))
    if skipped:
        tf.logging.warning("%s: %d of %d training questions skipped: their answer does not "
                           "match the context at answer_start (see the warnings above)",
                           path, skipped, skipped + len(examples))
    return SquadFile(path, examples, skipped, answers, len(data))
