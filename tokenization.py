"""Tokenization for BERT and KR-BERT: basic splitting, then WordPiece.

The output is the same, token for token, as the original BERT release's ``FullTokenizer``
for every input and both casing settings:

* NUL, U+FFFD and control characters (categories Cc and Cf, except tab, newline and
  carriage return) are dropped; whitespace (str.split's) separates words;
* every CJK ideograph (the eight code point ranges in ``_CJK_RANGES``) is a word of its own;
* with ``do_lower_case`` a word is lower-cased, NFD-normalised and stripped of its
  non-spacing marks (category Mn);
* every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126 and categories P*) is a
  word of its own;
* WordPiece splits a word greedily, longest match first; the whole word becomes ``[UNK]``
  when one piece is missing from the vocabulary or the word has more than 200 characters.

Two KR-BERT modes (see ``krbert_tokenization``): ``tokenizer="bidirectional"`` picks, per word,
the forward or backward greedy split made of more frequent pieces, and ``subchar=True``
NFKD-decomposes the text into jamo before tokenizing.

Speed: with ``do_lower_case=False`` a C extension tokenizes whole documents when it is built
(``fast_tokenization``; ``python setup.py build_ext --inplace``). Otherwise the per-character
rules are compiled into regular expressions built from this Python's ``unicodedata`` (the
same Unicode version as the per-character code), and WordPiece results are cached per word
in a bounded dictionary. ``reference_tokenize`` keeps the plain per-character algorithm; the
tests check that every path gives the same tokens.
"""

import collections
import itertools
import json
import re
import sys
import unicodedata

from cli import InputError
from tf_compat import tf

UNK_TOKEN = "[UNK]"
MAX_INPUT_CHARS_PER_WORD = 200
WORD_CACHE_SIZE = 1 << 17
"""Words whose pieces are remembered; the cache is emptied when it grows past this."""
MAX_CACHED_WORD_CHARS = 64
"""Longer words are tokenized every time, so the cache's memory stays small."""
TOKENIZERS = ("wordpiece", "bidirectional")

_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_ASCII_PUNCTUATION_RANGES = ((33, 47), (58, 64), (91, 96), (123, 126))
_HANGUL_SYLLABLES = re.compile(u"[\uac00-\ud7a3]")
_HANGUL_JAMO = re.compile(u"[\u1100-\u11ff]")
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


def load_vocab(vocab_file):
    """Reads a vocabulary (one token per line, id = line number) through gfile.

    Returns an OrderedDict token -> id. Lines are stripped of surrounding whitespace; a token
    listed twice keeps the id of its last line, as in the original release.
    """
    with tf.io.gfile.GFile(vocab_file, "r") as reader:
        lines = convert_to_unicode(reader.read()).split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the text after the final newline is not a line
    vocab = collections.OrderedDict()
    for index, line in enumerate(lines):
        vocab[line.strip()] = index
    return vocab


def convert_by_vocab(vocab, items):
    """Maps every item through `vocab` (tokens to ids or ids to tokens); KeyError if missing."""
    return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab, tokens):
    """Token strings -> ids."""
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab, ids):
    """Ids -> token strings."""
    return convert_by_vocab(inv_vocab, ids)


def _vocab_size(vocab):
    """Rows an embedding table needs for `vocab`: the largest id plus one."""
    return max(vocab.values()) + 1 if vocab else 0


def check_vocab_matches_config(vocab_file_or_size, bert_config_vocab_size,
                               bert_config_file="bert_config.json"):
    """Raises TokenizerError unless the vocabulary has exactly `vocab_size` entries.

    Args:
      vocab_file_or_size: a vocabulary file, a loaded vocabulary (token -> id) or a size.
      bert_config_vocab_size: `vocab_size` from the BERT config, or the config JSON file.
      bert_config_file: the config's name for the message when a number is given.
    Returns:
      The vocabulary size.
    """
    if isinstance(bert_config_vocab_size, str):
        bert_config_file = bert_config_vocab_size
        with tf.io.gfile.GFile(bert_config_file, "r") as reader:
            bert_config_vocab_size = json.loads(reader.read())["vocab_size"]
    vocab_name = "the vocabulary"
    size = vocab_file_or_size
    if isinstance(vocab_file_or_size, str):
        vocab_name, size = vocab_file_or_size, _vocab_size(load_vocab(vocab_file_or_size))
    elif isinstance(vocab_file_or_size, dict):
        size = _vocab_size(vocab_file_or_size)
    if size != bert_config_vocab_size:
        raise TokenizerError(
            "%s has %d tokens but %s says vocab_size=%d; pass the vocabulary the model was "
            "trained with (--vocab_file) or a config whose vocab_size matches it"
            % (vocab_name, size, bert_config_file, bert_config_vocab_size))
    return size


def check_case_matches_vocab(do_lower_case, vocab, vocab_file="the vocabulary"):
    """Raises TokenizerError when lower-casing would ruin the Korean text a vocabulary holds.

    Lower-casing NFD-decomposes every Hangul syllable into conjoining jamo, so with a
    syllable vocabulary (more tokens with syllables than tokens with jamo) no Korean word
    could match.
    """
    if not do_lower_case:
        return
    syllable_lines = [i for token, i in vocab.items() if _HANGUL_SYLLABLES.search(token)]
    jamo_tokens = sum(1 for token in vocab if _HANGUL_JAMO.search(token))
    if len(syllable_lines) > jamo_tokens:
        raise TokenizerError(
            "%s:%d: the vocabulary holds %d tokens with Hangul syllables, which "
            "do_lower_case=True would NFD-split into jamo so they never match; pass "
            "--do_lower_case=False"
            % (vocab_file, min(syllable_lines) + 1, len(syllable_lines)))


_LOWER_CASED_MODELS = ("uncased_L-24_H-1024_A-16", "uncased_L-12_H-768_A-12",
                       "multilingual_L-12_H-768_A-12", "chinese_L-12_H-768_A-12")
_CASED_MODELS = ("cased_L-12_H-768_A-12", "cased_L-24_H-1024_A-16",
                 "multi_cased_L-12_H-768_A-12")


def validate_case_matches_checkpoint(do_lower_case, init_checkpoint):
    """Raises TokenizerError when `do_lower_case` contradicts a released Google checkpoint.

    The casing is not stored in bert_config.json, so the checkpoint's folder name
    (e.g. ``uncased_L-12_H-768_A-12/bert_model.ckpt``) is the only hint; other names pass.
    """
    if not init_checkpoint:
        return
    match = re.match("^.*?([A-Za-z0-9_-]+)/bert_model.ckpt", init_checkpoint)
    if match is None:
        return
    model_name = match.group(1)
    if model_name in _LOWER_CASED_MODELS and not do_lower_case:
        wanted = True
    elif model_name in _CASED_MODELS and do_lower_case:
        wanted = False
    else:
        return
    raise TokenizerError(
        "--init_checkpoint=%s: %s is a %s model but --do_lower_case=%s; pass "
        "--do_lower_case=%s so fine-tuning sees text cased as in pre-training"
        % (init_checkpoint, model_name, "lower-cased" if wanted else "cased",
           not wanted, wanted))


# ---------------------------------------------------------------------------------------------
# Character classes: one character at a time (the reference) ...

def _is_whitespace(char):
    """Space, tab, newline, carriage return and category Zs."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char):
    """Categories Cc and Cf, except tab, newline and carriage return (whitespace here)."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
    """Non-alphanumeric printable ASCII, and every character of the P* categories."""
    cp = ord(char)
    if any(low <= cp <= high for low, high in _ASCII_PUNCTUATION_RANGES):
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp):
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


def _build_char_classes():
    """Scans every code point once and returns the compiled patterns the fast path uses.

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
    return {
        "unusual": re.compile("[%s%s%s\\U00010000-\\U0010ffff]"
                              % (bmp(drop), cjk_bmp, _regex_class(leaving))).search,
        "drop": re.compile("[%s]+" % _regex_class(drop)).sub,
        "cjk": re.compile("[%s]" % cjk).sub,
        "marks": re.compile("[%s]+" % _regex_class(marks)).sub,
        "marks_bmp": re.compile("[%s]+" % bmp(marks)).sub,
        "words": re.compile("[^\\s%s]+|[%s]" % (punct_class, punct_class)).findall,
        "words_bmp": re.compile("[^\\s%s]+|[%s]" % (punct_bmp, punct_bmp)).findall,
    }


_char_classes = {}


def _fast_classes():
    """The compiled character classes, built on first use (under a second)."""
    if not _char_classes:
        _char_classes.update(_build_char_classes())
    return _char_classes


# ---------------------------------------------------------------------------------------------
# Basic tokenization.

def _split_on_punctuation(word):
    """Splits `word` so that every punctuation character stands alone."""
    pieces, current = [], []
    for char in word:
        if _is_punctuation(char):
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


class BasicTokenizer(object):
    """Splits text into words: cleaning, CJK characters, optional lower-casing, punctuation."""

    def __init__(self, do_lower_case=True):
        """Args: do_lower_case: lower-case and strip accents (uncased models)."""
        self.do_lower_case = do_lower_case

    def __getattr__(self, name):
        """Fetches the compiled patterns on first use (FullTokenizer's C path needs none)."""
        if name not in ("_patterns", "_unusual", "_drop_marks", "_words"):
            raise AttributeError(name)
        self._patterns = _fast_classes()
        self._unusual = self._patterns["unusual"]
        self._drop_marks = self._patterns["marks_bmp"]
        self._words = self._patterns["words_bmp"]
        return getattr(self, name)

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
        patterns = self._patterns
        text = patterns["cjk"](" \\g<0> ", patterns["drop"]("", text))
        if self.do_lower_case:
            text = patterns["marks"]("", unicodedata.normalize("NFD", text.lower()))
        return patterns["words"](text)

    def reference_tokenize(self, text):
        """Returns the words of `text`, applying every rule one character at a time."""
        chars = []
        for char in convert_to_unicode(text):
            if char in u"\x00\ufffd" or _is_control(char):
                continue
            if _is_whitespace(char):
                chars.append(" ")
            elif _is_chinese_char(ord(char)):
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
        pieces = None
        if len(word) <= self.max_input_chars_per_word:
            pieces = self.word_pieces(word)
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
        pieces = None
        if len(word) <= self.max_input_chars_per_word:
            pieces = self.reference_pieces(word)
        return [self.unk_token] if pieces is None else pieces

    def reference_tokenize(self, text):
        """Same as tokenize, by the plain per-word algorithm."""
        tokens = []
        for word in whitespace_tokenize(convert_to_unicode(text)):
            tokens.extend(self.reference_word(word))
        return tokens


class _WordCache(dict):
    """word -> its pieces, for one WordPiece tokenizer; empties itself past `limit` words."""

    __slots__ = ("_word_pieces", "_unk", "_max_chars", "_limit")

    def __init__(self, wordpiece_tokenizer, limit):
        dict.__init__(self)
        self._word_pieces = wordpiece_tokenizer.word_pieces
        self._unk = (wordpiece_tokenizer.unk_token,)
        self._max_chars = wordpiece_tokenizer.max_input_chars_per_word
        self._limit = limit

    def __missing__(self, word):
        if len(word) > self._max_chars:
            return self._unk
        pieces = self._word_pieces(word)
        if pieces is None:
            pieces = self._unk
        if len(word) <= MAX_CACHED_WORD_CHARS:
            if len(self) >= self._limit:
                self.clear()
            self[word] = pieces
        return pieces


# ---------------------------------------------------------------------------------------------
# End to end.

class FullTokenizer(object):
    """Basic tokenization then WordPiece (or KR-BERT's bidirectional WordPiece).

    ``implementation`` names the path ``tokenize`` runs: C or pure Python (fast_tokenization).
    """

    def __init__(self, vocab_file, do_lower_case=True, tokenizer="wordpiece", subchar=False,
                 check_case=True, cache_size=WORD_CACHE_SIZE):
        """Args:
          vocab_file: one token per line (a gs:// path works).
          do_lower_case: lower-case and strip accents; must be False for Korean vocabularies
            of syllables (checked unless `check_case` is False).
          tokenizer: "wordpiece" (BERT) or "bidirectional" (KR-BERT's BidirectionalWordPiece,
            for vocabularies listed by frequency).
          subchar: NFKD-decompose the text into jamo first (KR-BERT sub-character models).
          cache_size: words whose pieces are remembered (pure-Python path).
        """
        if tokenizer not in TOKENIZERS:
            raise TokenizerError("--tokenizer=%s is unknown; use one of: %s"
                                 % (tokenizer, ", ".join(TOKENIZERS)))
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        if check_case:
            check_case_matches_vocab(do_lower_case, self.vocab, vocab_file)
        self.tokenizer = tokenizer
        self.subchar = subchar
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        if tokenizer == "bidirectional":
            from krbert_tokenization import BidirectionalWordpieceTokenizer
            self.wordpiece_tokenizer = BidirectionalWordpieceTokenizer(vocab=self.vocab)
        else:
            self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        self._words = self.basic_tokenizer.tokenize
        self._pieces = _WordCache(self.wordpiece_tokenizer, cache_size).__getitem__
        import fast_tokenization  # not at the top: it imports this module
        self._fast, self.implementation = fast_tokenization.choose_implementation(
            self.wordpiece_tokenizer, do_lower_case, tokenizer == "bidirectional")

    def tokenize(self, text):
        """The WordPiece tokens of `text` (str or UTF-8 bytes)."""
        if text.__class__ is not str:
            text = convert_to_unicode(text)
        if self.subchar and not text.isascii():
            text = unicodedata.normalize("NFKD", text)
        if self._fast is not None:
            return self._fast(text)
        return list(_CHAIN(map(self._pieces, self._words(text))))

    def reference_tokenize(self, text):
        """Same as tokenize, by the plain per-character algorithm (slow; for checking)."""
        text = convert_to_unicode(text)
        if self.subchar:
            text = unicodedata.normalize("NFKD", text)
        tokens = []
        for word in self.basic_tokenizer.reference_tokenize(text):
            tokens.extend(self.wordpiece_tokenizer.reference_word(word))
        return tokens

    def convert_tokens_to_ids(self, tokens):
        """Token strings -> ids."""
        return convert_by_vocab(self.vocab, tokens)

    def convert_ids_to_tokens(self, ids):
        """Ids -> token strings."""
        return convert_by_vocab(self.inv_vocab, ids)


# ---------------------------------------------------------------------------------------------
# Command-line flags shared by every script that tokenizes.

def define_tokenizer_flags(flags):
    """Defines --tokenizer and --subchar on an absl `flags` module (once per process)."""
    if "tokenizer" not in flags.FLAGS:
        flags.DEFINE_enum(
            "tokenizer", "wordpiece", list(TOKENIZERS),
            "wordpiece: BERT's greedy WordPiece; bidirectional: KR-BERT's BidirectionalWordPiece "
            "(needs a vocabulary listed by frequency).")
    if "subchar" not in flags.FLAGS:
        flags.DEFINE_bool(
            "subchar", False,
            "NFKD-decompose text into jamo before tokenizing (KR-BERT sub-character models).")


def tokenizer_from_flags(vocab_file, do_lower_case, tokenizer="wordpiece", subchar=False):
    """The FullTokenizer that --vocab_file, --do_lower_case, --tokenizer and --subchar ask for."""
    return FullTokenizer(vocab_file, do_lower_case=do_lower_case, tokenizer=tokenizer,
                         subchar=subchar)
