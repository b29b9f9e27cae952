"""Korean sentence splitting, paying for the model only where a rule cannot decide.

Three splitters (build_corpus.py --splitter):

- ``none``: a paragraph is one sentence;
- ``punct``: cut after sentence-final punctuation (. ! ? … and runs of them, with closing
  quotes or brackets) followed by a space, never inside quotes or brackets, never in a
  number (3.5) since a space must follow;
- ``kiwi`` (the default): ``punct`` first; then each piece that still holds a place where
  a sentence may end without punctuation is split by kiwipiepy's ``split_into_sents`` (a
  morphological analyser). Such a place is an eojeol followed by more text that ends in a
  final ending (다, 요, 죠, 까, 네) or in ㅋㅋ/ㅎㅎ/ㅠㅠ (``LIKELY_END``) and, when the piece
  does not end in punctuation (its writer may not punctuate at all), also in a connective
  or noun-like ending, ~ or ^^ (``MAY_END``). A piece without such a place is one sentence
  and costs no analysis: a short comment, a line that already ends in one sentence, most of
  formal text once it is cut at its full stops.

A piece longer than ``MODEL_MAX_CHARS`` (a paragraph of thousands of characters without
sentence-final punctuation, e.g. a whole scraped page on one line) is first cut into parts
of at most that length (``bounded_parts``), each at the last place within the limit where
a sentence may end (``MAY_END``), else at the last space, else at the limit; the model then
splits each part. So its time and memory grow linearly with the length of a line (the
model's own grow faster on one huge input); such a cut is a sentence end the model did not
choose.

Measured against kiwipiepy on whole paragraphs, and why kiwipiepy: docs/corpus.md.
"""

import collections
import re

SPLITTERS = ("kiwi", "punct", "none")

_CLOSING = "\"'\u201d\u2019)\\]\u300d\u300f>"
_FINAL_PUNCT = re.compile(r"(?:[.!?\u2026\u3002\uff01\uff1f]+|~+|\^\^+)[%s]*\s+" % _CLOSING)
_OPENERS = {"(": ")", "[": "]", "\u201c": "\u201d", "\u2018": "\u2019", "\u300c": "\u300d",
            "\u300e": "\u300f", "<": ">"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}

MAY_END = re.compile(
    r"(?:[다요죠까네니지군나래야음함임됨듯셈자라어아오구며고]|[ㅋㅎㅠㅜ]{2,}|[~^]+)[%s]*\s+\S"
    % _CLOSING)
"""A place inside a piece that does not end in punctuation where a sentence may still end:
the writer may not punctuate at all, so connective endings count too."""

LIKELY_END = re.compile(r"(?:[다요죠까네]|[ㅋㅎㅠㅜ]{2,})[%s]*\s+\S" % _CLOSING)
"""The same inside a piece that ends in punctuation: the writer punctuates, so only a final
ending (다, 요, 죠, 까, 네) or laughter/crying left unpunctuated suggests a sentence end."""

_ENDS_PUNCTUATED = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][%s]*$" % _CLOSING)


MODEL_MAX_CHARS = 2000
"""The longest text given to the model at once; longer pieces are cut first (bounded_parts)."""

MAX_QUOTE_CHARS = 200
"""A quote or bracket left open longer than this is taken as unbalanced: it no longer stops
cuts (one stray bracket must not make a paragraph one sentence)."""


class _Nesting(object):
    """Open quotes and brackets of a text read left to right (``advance`` to a position)."""

    def __init__(self, text):
        self.text, self.position, self.depth, self.straight = text, 0, 0, False
        self.opened_at = 0

    def advance(self, end):
        """Reads up to ``end``; whether ``end`` is inside a quote or brackets."""
        for offset, char in enumerate(self.text[self.position:end], start=self.position):
            was_open = self.depth > 0 or self.straight
            if char in _OPENERS:
                self.depth += 1
            elif char in _CLOSERS:
                self.depth = max(0, self.depth - 1)
            elif char == '"':
                self.straight = not self.straight
            if not was_open:
                self.opened_at = offset
        self.position = end
        return (self.depth > 0 or self.straight) and end - self.opened_at <= MAX_QUOTE_CHARS


def split_punct(text):
    """Cuts ``text`` after final punctuation followed by a space (not inside quotes or
    brackets). Returns the stripped, non-empty pieces."""
    pieces, start = [], 0
    nesting = _Nesting(text)
    for match in _FINAL_PUNCT.finditer(text):
        end = match.end()
        if end >= len(text):
            break
        cut = match.start() + len(match.group().rstrip())
        if nesting.advance(cut):
            continue
        pieces.append(text[start:cut].strip())
        start = end
    pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


def bounded_parts(text, limit=MODEL_MAX_CHARS):
    """``text`` cut into stripped parts of at most ``limit`` characters: each cut at the
    start of the word after the last place within the limit where a sentence may end
    (MAY_END), else after the last space, else at the limit. Linear in len(text)."""
    parts, start = [], 0
    while len(text) - start > limit:
        window = text[start:start + limit]
        cut = 0
        for match in MAY_END.finditer(window):
            cut = match.end() - 1  # the first character of the next word
        if cut <= 0:
            cut = window.rfind(" ") + 1 or limit
        parts.append(window[:cut].strip())
        start += cut
    parts.append(text[start:].strip())
    return [part for part in parts if part]


class SentenceSplitter(object):
    """Splits cleaned paragraphs into sentences; ``counts`` records how many pieces went
    through the model and how many bytes."""

    def __init__(self, name="kiwi", model_threads=1):
        if name not in SPLITTERS:
            raise ValueError("unknown splitter %r" % name)
        self.name = name
        self.model_threads = model_threads
        self._kiwi = None
        self.counts = collections.Counter()

    def load(self):
        """Loads the model now (before worker processes fork, or to fail early)."""
        if self.name == "kiwi" and self._kiwi is None:
            from kiwipiepy import Kiwi

            self._kiwi = Kiwi(num_workers=self.model_threads)
            self._kiwi.split_into_sents("모형을 불러 둡니다. 처음 한 번만")  # loads lazily
        return self

    def split(self, paragraph):
        """The sentences (str, stripped, non-empty) of one cleaned paragraph."""
        if self.name == "none":
            return [paragraph] if paragraph else []
        pieces = split_punct(paragraph)
        if self.name == "punct":
            return pieces
        sentences = []
        for piece in pieces:
            parts = bounded_parts(piece) if len(piece) > MODEL_MAX_CHARS else [piece]
            if len(parts) > 1:
                self.counts["pieces_cut_before_the_model"] += 1
            for part in parts:
                places = LIKELY_END if _ENDS_PUNCTUATED.search(part) else MAY_END
                if places.search(part) is None:
                    sentences.append(part)
                else:
                    sentences.extend(self.split_with_model(part))
        return sentences

    def split_with_model(self, text):
        """kiwipiepy's sentences of ``text`` (every sentence by the model)."""
        self.load()
        self.counts["pieces_split_by_model"] += 1
        self.counts["bytes_split_by_model"] += len(text.encode("utf-8"))
        found = [s.text.strip() for s in self._kiwi.split_into_sents(text, return_sub_sents=False)]
        return [sentence for sentence in found if sentence]


def kiwi_missing_reason():
    """Why kiwipiepy cannot be imported (the ImportError's message), or None when it can."""
    try:
        import kiwipiepy  # noqa: F401
    except ImportError as e:
        return str(e)
    return None
