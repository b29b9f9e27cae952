"""The C tokenizer behind ``tokenization.FullTokenizer`` for cased text, and when it is used.

The extension module ``_fast_tokenizer`` (csrc/fast_tokenizer.c) tokenizes a whole document
in one pass: it drops NUL, U+FFFD and control characters, splits on whitespace, makes every
punctuation character and CJK ideograph a word of its own, then splits every word with
greedy longest-match-first WordPiece, or KR-BERT's bidirectional WordPiece, over tries of
the vocabulary. Python still decodes bytes and NFKD-decomposes text for sub-character
models (``FullTokenizer.tokenize``), and supplies the character classes (``char_class``,
from the per-character rules of ``wordpiece``, which the reference path applies). It keeps no word
cache: splitting a word in C costs about as much as looking it up would.

Build it with ``python setup.py build_ext --inplace`` (scripts/setup.sh does, for its
environment). ``FullTokenizer`` uses it when

* the module is built for this Python, from sources of the same ``API_VERSION``;
* ``do_lower_case`` is False (lower-casing and accent stripping stay in Python);
* the environment variable ``KRBERT_PURE_PYTHON`` is unset, empty or ``0``.

Otherwise it tokenizes in pure Python. Both give the same tokens; the tests compare each
with the per-character reference path.
"""

import functools
import os

from krbert.tokenizers import wordpiece
from krbert.tokenizers.bidirectional import SPECIAL_IDS

try:
    from krbert.tokenizers import _fast_tokenizer
except ImportError:  # not built: the pure-Python path is used
    _fast_tokenizer = None

API_VERSION = 1
"""The interface this module expects of _fast_tokenizer (its API_VERSION)."""
PURE_PYTHON_ENV = "KRBERT_PURE_PYTHON"
C_IMPLEMENTATION = "C extension (_fast_tokenizer)"
PYTHON_IMPLEMENTATION = "pure Python"

# Character classes, as csrc/fast_tokenizer.c numbers them.
CHAR_WORD = 0
"""Part of a word."""
CHAR_DROP = 1
"""Removed without separating words: NUL, U+FFFD, control characters (Cc, Cf)."""
CHAR_SPACE = 2
"""Separates words: str.split's whitespace, once the characters to drop are gone."""
CHAR_ALONE = 3
"""A word of its own: punctuation and CJK ideographs."""

def extension():
    """The built _fast_tokenizer module, or None when it is missing or of another API_VERSION."""
    if getattr(_fast_tokenizer, "API_VERSION", None) != API_VERSION:
        return None
    return _fast_tokenizer


def pure_python_forced():
    """Whether KRBERT_PURE_PYTHON asks for the pure-Python path (any value but "" and "0")."""
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


def char_class(cp):
    """How basic tokenization with do_lower_case=False treats code point `cp` (a CHAR_* class)."""
    char = chr(cp)
    if char in u"\x00\ufffd" or wordpiece.is_control(char):
        return CHAR_DROP
    if char.isspace():  # covers wordpiece.is_whitespace, and what str.split splits on
        return CHAR_SPACE
    if wordpiece.is_chinese_char(cp) or wordpiece.is_punctuation(char):
        return CHAR_ALONE
    return CHAR_WORD


@functools.lru_cache(maxsize=None)
def bmp_classes():
    """char_class of every code point below U+10000, as 65,536 bytes (computed once)."""
    return bytes(map(char_class, range(0x10000)))


def c_tokenizer(wordpiece_tokenizer, bidirectional):
    """A _fast_tokenizer.Tokenizer with the vocabulary and settings of `wordpiece_tokenizer`.

    Args:
      wordpiece_tokenizer: a wordpiece.WordpieceTokenizer (vocab, unk_token and
        max_input_chars_per_word are read).
      bidirectional: split words as bidirectional.BidirectionalWordpieceTokenizer does.
    Raises:
      RuntimeError: when the extension is not built (see extension()).
    """
    module = extension()
    if module is None:
        raise RuntimeError("the C tokenizer _fast_tokenizer is not built for this Python; run "
                           "scripts/setup.sh or 'python setup.py build_ext --inplace'")
    return module.Tokenizer(wordpiece_tokenizer.vocab, wordpiece_tokenizer.unk_token,
                            wordpiece_tokenizer.max_input_chars_per_word, bidirectional,
                            SPECIAL_IDS, bmp_classes(), char_class)


def choose_implementation(wordpiece_tokenizer, do_lower_case, bidirectional):
    """(tokenize, name) for FullTokenizer: the C tokenize(str) or None for pure Python.

    The C path is chosen when the extension is built, `do_lower_case` is False and
    KRBERT_PURE_PYTHON does not force pure Python; `name` says which path runs.
    """
    if do_lower_case or pure_python_forced() or extension() is None:
        return None, PYTHON_IMPLEMENTATION
    return c_tokenizer(wordpiece_tokenizer, bidirectional).tokenize, C_IMPLEMENTATION
