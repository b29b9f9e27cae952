"""BERT's tokenization algorithm: the character rules, basic splitting, WordPiece, vocabularies.

The output is the same, token for token, as the original BERT release's tokenizer for every
input and both casing settings:

* NUL, U+FFFD and control characters (categories Cc and Cf, except tab, newline and
  carriage return) are dropped; whitespace (str.split's) separates words;
* every CJK ideograph (the eight code point ranges in ``_CJK_RANGES``) is a word of its own;
* with ``do_lower_case`` a word is lower-cased, NFD-normalised and stripped of its
  non-spacing marks (category Mn);
* every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126 and categories P*) is a
  word of its own;
* WordPiece splits a word greedily, longest match first; the whole word becomes ``[UNK]``
  when one piece is missing from the vocabulary or the word has more than 200 characters.

This is the bottom layer of the tokenizer modules: ``bidirectional`` (KR-BERT's modes) and
``fast`` (the C tokenizer) of krbert.tokenizers build on it, and ``tokenization.FullTokenizer``
on all three. The fast path compiles the per-character rules into regular expressions built
from this Python's ``unicodedata`` (the same Unicode version as the per-character code);
``reference_tokenize`` keeps the plain per-character algorithm, and the tests check that
every path gives the same tokens.
"""

import collections
import functools
import itertools
import re
import sys
import unicodedata

from krbert.cli import InputError
from krbert.tf_compat import tf

UNK_TOKEN = "[UNK]"
MAX_INPUT_CHARS_PER_WORD = 200

_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_ASCII_PUNCTUATION_RANGES = ((33, 47), (58, 64), (91, 96), (123, 126))
_UTF8_BOM = b"\xef\xbb\xbf"
_CHAIN = itertools.chain.from_iterable


class TokenizerError(InputError, ValueError):
    """Bad tokenizer settings or vocabulary. A ValueError too, like the original's errors."""


# ---------------------------------------------------------------------------------------------
# Text and vocabulary helpers (the original release's module functions).

def convert_to_unicode(text):
    """Returns `text` as str, decoding bytes as UTF-8 (undecodable bytes are dropped)."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise ValueError("Unsupported string type: %s" % type(text))


def printable_text(text):
    """Returns `text` as a str fit for print or logging (same as convert_to_unicode on Python 3)."""
    return convert_to_unicode(text)


def whitespace_tokenize(text):
    """Splits `text` on whitespace runs; no empty strings."""
    return text.split()


def load_vocab(vocab_file, required_tokens=()):
    """Reads a vocabulary (one token per line, id = line number) through gfile.

    Returns an OrderedDict token -> id, as the original release does for a well-formed
    file: lines are stripped of surrounding whitespace, a UTF-8 byte order mark is dropped.
    What would silently shift or reassign ids is refused with a TokenizerError naming the
    file, the line and the token: a line that is not UTF-8, an empty line, a token listed
    twice (the original gave it the id of its last line), and a missing `required_tokens`
    entry. (The published KR-BERT vocabularies have none of these.)
    """
    try:
        with tf.io.gfile.GFile(vocab_file, "rb") as reader:
            data = reader.read()
    except tf.errors.OpError as e:
        raise TokenizerError("%s: the vocabulary could not be read (%s); pass a vocabulary "
                             "file, one token per line (--vocab_file)" % (vocab_file, e.message))
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the text after the final newline is not a line
    vocab = collections.OrderedDict()
    for index, line in enumerate(lines):
        token = _vocab_token(vocab_file, index + 1, line)
        if token in vocab:
            raise TokenizerError(
                "%s:%d: token %r is listed again (first at line %d); every token must appear "
                "once, or the ids after it shift: remove the repeated line"
                % (vocab_file, index + 1, token, vocab[token] + 1))
        vocab[token] = index
    missing = [token for token in required_tokens if token not in vocab]
    if missing:
        raise TokenizerError("%s: the vocabulary has no %s token; pass a BERT vocabulary "
                             "(with %s)" % (vocab_file, missing[0], " ".join(required_tokens)))
    return vocab


def _vocab_token(vocab_file, line_number, line):
    """The token on one line (bytes) of a vocabulary file; TokenizerError if bad."""
    try:
        token = line.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise TokenizerError(
            "%s:%d: line %r is not valid UTF-8 (byte %d); save the vocabulary as UTF-8"
            % (vocab_file, line_number, line.decode("utf-8", "replace").strip(), e.start + 1))
    if not token:
        raise TokenizerError("%s:%d: empty line; every line must hold one token, or the ids "
                             "after it shift: remove the line" % (vocab_file, line_number))
    return token


def convert_by_vocab(vocab, items):
    """Maps every item through `vocab` (tokens to ids or ids to tokens); KeyError if missing."""
    return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab, tokens):
    """Token strings -> ids."""
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab, ids):
    """Ids -> token strings."""
    return convert_by_vocab(inv_vocab, ids)


# ---------------------------------------------------------------------------------------------
# Character classes: one character at a time (the reference) ...

def is_whitespace(char):
    """Space, tab, newline, carriage return and category Zs."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char):
    """Categories Cc and Cf, except tab, newline and carriage return (whitespace here)."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def is_punctuation(char):
    """Non-alphanumeric printable ASCII, and every character of the P* categories."""
    cp = ord(char)
    if any(low <= cp <= high for low, high in _ASCII_PUNCTUATION_RANGES):
        return True
    return unicodedata.category(char).startswith("P")


def is_chinese_char(cp):
    """Whether code point `cp` lies in one of the CJK ideograph ranges."""
    return any(low <= cp <= high for low, high in _CJK_RANGES)


# ... and the same classes compiled into regular expressions.

def _regex_class(codepoints):
    """Body of a regex character class matching exactly the sorted `codepoints`."""
    parts = []
    for _, run in itertools.groupby(enumerate(codepoints), lambda pair: pair[1] - pair[0]):
        run = [cp for _, cp in run]
        parts.append("\\U%08x" % run[0] if len(run) == 1 else
                     "\\U%08x-\\U%08x" % (run[0], run[-1]))
    return "".join(parts)


def _leaves_bmp(cp):
    """Whether lower-casing or NFD turns BMP character `cp` into characters beyond U+FFFF."""
    return max(unicodedata.normalize("NFD", chr(cp).lower())) > u"\uffff"


CharPatterns = collections.namedtuple(
    "CharPatterns", "unusual drop cjk marks marks_bmp words words_bmp")
"""The compiled character classes of the fast path (see char_patterns)."""


@functools.lru_cache(maxsize=None)
def char_patterns():
    """Scans every code point once (under a second, on first use) into CharPatterns.

    Python's regex engine tests a class of BMP characters with one table lookup but tries
    characters beyond U+FFFF range by range, so each pattern also comes in a BMP-only
    variant ("*_bmp"), used for texts that hold no character beyond U+FFFF and no
    character that needs cleaning (what "unusual" finds).
    """
    categories = list(map(unicodedata.category, map(chr, range(sys.maxunicode + 1))))

    def having(wanted):  # the code points whose category is in `wanted`
        return list(itertools.compress(itertools.count(), map(wanted.__contains__, categories)))

    drop = sorted(set(having({"Cc", "Cf"}) + [0, 0xFFFD]) - {9, 10, 13})
    punctuation = sorted(set(having({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"})).union(
        *(range(low, high + 1) for low, high in _ASCII_PUNCTUATION_RANGES)))
    marks = having({"Mn"})
    cjk = "".join("\\U%08x-\\U%08x" % pair for pair in _CJK_RANGES)
    cjk_bmp = "".join("\\U%08x-\\U%08x" % pair for pair in _CJK_RANGES if pair[1] <= 0xFFFF)
    leaving = [cp for cp in range(0x80, 0x10000) if _leaves_bmp(cp)]

    def bmp(codepoints):
        return _regex_class([cp for cp in codepoints if cp <= 0xFFFF])

    punct_class, punct_bmp = _regex_class(punctuation), bmp(punctuation)
    return CharPatterns(
        unusual=re.compile("[%s%s%s\\U00010000-\\U0010ffff]"
                           % (bmp(drop), cjk_bmp, _regex_class(leaving))).search,
        drop=re.compile("[%s]+" % _regex_class(drop)).sub,
        cjk=re.compile("[%s]" % cjk).sub,
        marks=re.compile("[%s]+" % _regex_class(marks)).sub,
        marks_bmp=re.compile("[%s]+" % bmp(marks)).sub,
        words=re.compile("[^\\s%s]+|[%s]" % (punct_class, punct_class)).findall,
        words_bmp=re.compile("[^\\s%s]+|[%s]" % (punct_bmp, punct_bmp)).findall,
    )


# ---------------------------------------------------------------------------------------------
# Basic tokenization.

def _split_on_punctuation(word):
    """Splits `word` so that every punctuation character stands alone."""
    pieces, current = [], []
    for char in word:
        if is_punctuation(char):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(char)
        else:
            current.append(char)
    if current:
        pieces.append("".join(current))
    return pieces


def _strip_accents(word):
    """NFD-normalises `word` and drops its non-spacing marks, one character at a time."""
    return "".join(char for char in unicodedata.normalize("NFD", word)
                   if unicodedata.category(char) != "Mn")


class lazy_attribute(object):
    """A read-only attribute computed on first use, then stored on the instance (so later
    reads are plain attribute lookups)."""

    def __init__(self, compute):
        self.compute = compute
        self.__doc__ = compute.__doc__

    def __get__(self, instance, owner):
        if instance is None:
            return self
        value = instance.__dict__[self.compute.__name__] = self.compute(instance)
        return value


class BasicTokenizer(object):
    """Splits text into words: cleaning, CJK characters, optional lower-casing, punctuation."""

    def __init__(self, do_lower_case=True):
        """Args: do_lower_case: lower-case and strip accents (uncased models)."""
        self.do_lower_case = do_lower_case

    # The patterns of the common case, fetched on first use (FullTokenizer's C path needs
    # none): texts with no character beyond U+FFFF and none to drop or to set apart.
    @lazy_attribute
    def _unusual(self):
        return char_patterns().unusual

    @lazy_attribute
    def _drop_marks(self):
        return char_patterns().marks_bmp

    @lazy_attribute
    def _words(self):
        return char_patterns().words_bmp

    def tokenize(self, text):
        """Returns the words of `text` (fast path; same output as reference_tokenize)."""
        if text.__class__ is not str:
            text = convert_to_unicode(text)
        if self._unusual(text):
            return self._tokenize_unusual(text)
        if self.do_lower_case:
            text = text.lower()
            if not text.isascii():
                text = self._drop_marks("", unicodedata.normalize("NFD", text))
        return self._words(text)

    def _tokenize_unusual(self, text):
        """tokenize for texts with characters to drop, CJK ideographs or beyond U+FFFF."""
        patterns = char_patterns()
        text = patterns.cjk(" \\g<0> ", patterns.drop("", text))
        if self.do_lower_case:
            text = patterns.marks("", unicodedata.normalize("NFD", text.lower()))
        return patterns.words(text)

    def reference_tokenize(self, text):
        """Returns the words of `text`, applying every rule one character at a time."""
        chars = []
        for char in convert_to_unicode(text):
            if char in u"\x00\ufffd" or is_control(char):
                continue
            if is_whitespace(char):
                chars.append(" ")
            elif is_chinese_char(ord(char)):
                chars.extend((" ", char, " "))
            else:
                chars.append(char)
        words = []
        for word in whitespace_tokenize("".join(chars)):
            if self.do_lower_case:
                word = _strip_accents(word.lower())
            words.extend(_split_on_punctuation(word))
        return whitespace_tokenize(" ".join(words))


# ---------------------------------------------------------------------------------------------
# WordPiece.

def affix_table(pieces, suffixes=False):
    """Maps every non-empty prefix (or suffix) of the `pieces` texts to the piece it spells.

    `pieces` maps a text to its token ("b" -> "##b" for continuations). A prefix that only
    begins longer texts maps to "", so a search can stop as soon as a lookup finds nothing.
    """
    table = {}
    for text in pieces:
        for cut in range(1, len(text)):
            table.setdefault(text[cut:] if suffixes else text[:cut], "")
    for text, piece in pieces.items():
        if text:
            table[text] = piece
    return table


class WordpieceTokenizer(object):
    """Greedy longest-match-first WordPiece; a word with a missing piece becomes `unk_token`."""

    def __init__(self, vocab, unk_token=UNK_TOKEN,
                 max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD):
        """Args: vocab: token -> id; unk_token; max_input_chars_per_word: longer -> unk."""
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # Any token may start a word; "##x" continues one with the text "x". The tables map
        # prefixes to the token (or ""); they return the vocabulary's own strings, so cached
        # pieces share memory.
        self._continue_texts = {token[2:]: token for token in vocab if token.startswith("##")}
        self._starts = affix_table({token: token for token in vocab})
        self._continues = affix_table(self._continue_texts)

    def forward_pieces(self, word):
        """Greedy longest-match-first pieces of `word` (a list), or None when one is missing."""
        pieces, start, length = [], 0, len(word)
        table = self._starts
        while start < length:
            piece, end = None, start
            while end < length:
                end += 1
                found = table.get(word[start:end])
                if found is None:
                    break  # no token begins with word[start:end]
                if found:
                    piece, piece_end = found, end
            if piece is None:
                return None
            pieces.append(piece)
            start = piece_end
            table = self._continues
        return pieces

    # The pieces of a word of at most max_input_chars_per_word characters, or None.
    word_pieces = forward_pieces

    def tokenize_word(self, word):
        """The pieces of one word as a list; [unk_token] if it cannot be split."""
        return self._pieces_or_unk(word, self.word_pieces)

    def _pieces_or_unk(self, word, split):
        """split(word), or [unk_token] when it fails or the word is too long."""
        pieces = None
        if len(word) <= self.max_input_chars_per_word:
            pieces = split(word)
        return [self.unk_token] if pieces is None else pieces

    def tokenize(self, text):
        """WordPiece tokens of a whitespace-separated `text` (already basic-tokenized)."""
        words = whitespace_tokenize(convert_to_unicode(text))
        return list(_CHAIN(map(self.tokenize_word, words)))

    def reference_forward(self, word):
        """Forward pieces by the plain greedy search over every substring, or None."""
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return None
            pieces.append(piece)
            start = end
        return pieces

    # word_pieces by the plain algorithm.
    reference_pieces = reference_forward

    def reference_word(self, word):
        """The pieces of one word, by the plain algorithm."""
        return self._pieces_or_unk(word, self.reference_pieces)

    def reference_tokenize(self, text):
        """Same as tokenize, by the plain per-word algorithm."""
        tokens = []
        for word in whitespace_tokenize(convert_to_unicode(text)):
            tokens.extend(self.reference_word(word))
        return tokens


