"""Tokenization for BERT and KR-BERT: ``FullTokenizer``, its checks and its flags.

``FullTokenizer`` gives exactly the tokens of the original BERT release's ``FullTokenizer``
(basic splitting, then WordPiece) for every input and both casing settings, and this module
keeps the original module's names (``BasicTokenizer``, ``WordpieceTokenizer``,
``load_vocab``, ``convert_tokens_to_ids``, ``_is_whitespace``, ...). The tokenizer modules
are layered, each importing only those below it:

* ``krbert.tokenizers.wordpiece``: the character rules, ``BasicTokenizer``,
  ``WordpieceTokenizer`` and the vocabulary file;
* ``krbert.tokenizers.bidirectional``: KR-BERT's modes. ``tokenizer="bidirectional"`` picks,
  per word, the forward or backward greedy split made of more frequent pieces, and
  ``subchar=True`` NFKD-decomposes the text into jamo before tokenizing;
  ``krbert.tokenizers.fast``: the C tokenizer;
* this module: ``FullTokenizer``, the checks of settings, and the flags.

Speed: with ``do_lower_case=False`` a C extension tokenizes whole documents when it is built
(``krbert.tokenizers.fast``; ``python setup.py build_ext --inplace``). Otherwise the pure-Python
path runs, with WordPiece results cached per word in a bounded dictionary.
``reference_tokenize`` keeps the plain per-character algorithm; the tests check that every
path gives the same tokens.
"""

import itertools
import re

from krbert.tokenizers import fast as fast_tokenization
from krbert.tokenizers import wordpiece
from krbert.tokenizers.bidirectional import BidirectionalWordpieceTokenizer, to_subchar
from krbert.tokenizers.wordpiece import (
    MAX_INPUT_CHARS_PER_WORD,
    UNK_TOKEN,
    BasicTokenizer,
    TokenizerError,
    WordpieceTokenizer,
    convert_by_vocab,
    convert_ids_to_tokens,
    convert_to_unicode,
    convert_tokens_to_ids,
    load_vocab,
    printable_text,
    whitespace_tokenize,
)

__all__ = [
    "FullTokenizer", "BasicTokenizer", "WordpieceTokenizer", "TokenizerError", "load_vocab",
    "convert_by_vocab", "convert_tokens_to_ids", "convert_ids_to_tokens", "convert_to_unicode",
    "printable_text", "whitespace_tokenize", "check_vocab_matches_config",
    "check_case_matches_vocab", "check_case_matches_checkpoint", "define_tokenizer_flags",
    "tokenizer_from_flags",
    "UNK_TOKEN", "MAX_INPUT_CHARS_PER_WORD", "TOKENIZERS", "WORD_CACHE_SIZE",
]

WORD_CACHE_SIZE = 1 << 17
"""Words whose pieces are remembered; the cache is emptied when it grows past this."""
MAX_CACHED_WORD_CHARS = 64
"""Longer words are tokenized every time, so the cache's memory stays small."""
TOKENIZERS = ("wordpiece", "bidirectional")

_HANGUL_SYLLABLES = re.compile(u"[\uac00-\ud7a3]")
_HANGUL_JAMO = re.compile(u"[\u1100-\u11ff]")
_CHAIN = itertools.chain.from_iterable

# The original release's names for the character rules.
_is_whitespace = wordpiece.is_whitespace
_is_control = wordpiece.is_control
_is_punctuation = wordpiece.is_punctuation


# ---------------------------------------------------------------------------------------------
# Checks of settings.

def check_vocab_matches_config(vocab_file_or_size, bert_config_vocab_size,
                               bert_config_file="bert_config.json"):
    """Raises TokenizerError unless the vocabulary has exactly `vocab_size` entries.

    Args:
      vocab_file_or_size: a vocabulary file, a loaded vocabulary (token -> id) or a size.
      bert_config_vocab_size: `vocab_size` of the BERT config (bert_config.BertConfig).
      bert_config_file: the config's name, for the message.
    Returns:
      The vocabulary size.
    """
    vocab_name = "the vocabulary"
    size = vocab_file_or_size
    if isinstance(vocab_file_or_size, str):
        vocab_name, size = vocab_file_or_size, len(load_vocab(vocab_file_or_size))
    elif isinstance(vocab_file_or_size, dict):
        size = len(vocab_file_or_size)
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


def check_case_matches_checkpoint(do_lower_case, init_checkpoint):
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

    ``implementation`` names the path ``tokenize`` runs: C or pure Python (krbert.tokenizers.fast).
    """

    def __init__(self, vocab_file, do_lower_case=True, tokenizer="wordpiece", subchar=False,
                 check_case=True, cache_size=WORD_CACHE_SIZE, required_tokens=(UNK_TOKEN,)):
        """Args:
          vocab_file: one token per line (a gs:// path works).
          do_lower_case: lower-case and strip accents; must be False for Korean vocabularies
            of syllables (checked unless `check_case` is False).
          tokenizer: "wordpiece" (BERT) or "bidirectional" (KR-BERT's BidirectionalWordPiece,
            for vocabularies listed by frequency).
          subchar: NFKD-decompose the text into jamo first (KR-BERT sub-character models).
          cache_size: words whose pieces are remembered (pure-Python path).
          required_tokens: tokens the vocabulary must hold (TokenizerError otherwise); WordPiece
            needs [UNK], a classifier also [CLS] and [SEP].
        """
        if tokenizer not in TOKENIZERS:
            raise TokenizerError("--tokenizer=%s is unknown; use one of: %s"
                                 % (tokenizer, ", ".join(TOKENIZERS)))
        self.vocab = load_vocab(vocab_file, required_tokens)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        if check_case:
            check_case_matches_vocab(do_lower_case, self.vocab, vocab_file)
        self.tokenizer = tokenizer
        self.subchar = subchar
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        if tokenizer == "bidirectional":
            self.wordpiece_tokenizer = BidirectionalWordpieceTokenizer(vocab=self.vocab)
        else:
            self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        self._words = self.basic_tokenizer.tokenize
        self._pieces = _WordCache(self.wordpiece_tokenizer, cache_size).__getitem__
        self._fast, self.implementation = fast_tokenization.choose_implementation(
            self.wordpiece_tokenizer, do_lower_case, tokenizer == "bidirectional")

    def tokenize(self, text):
        """The WordPiece tokens of `text` (str or UTF-8 bytes)."""
        if text.__class__ is not str:
            text = convert_to_unicode(text)
        if self.subchar:
            text = to_subchar(text)
        if self._fast is not None:
            return self._fast(text)
        return list(_CHAIN(map(self._pieces, self._words(text))))

    def reference_tokenize(self, text):
        """Same as tokenize, by the plain per-character algorithm (slow; for checking)."""
        text = convert_to_unicode(text)
        if self.subchar:
            text = to_subchar(text)
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


def tokenizer_from_flags(FLAGS, vocab_size, required_tokens=("[UNK]", "[CLS]", "[SEP]"),
                         checkpoint=None):
    """The FullTokenizer of --vocab_file, --do_lower_case, --tokenizer and --subchar, after
    the checks every script makes: the casing against a released checkpoint's name
    (``checkpoint``, else --init_checkpoint) and the vocabulary's size against
    ``vocab_size`` of --bert_config_file. Raises TokenizerError (an InputError)."""
    check_case_matches_checkpoint(FLAGS.do_lower_case, checkpoint or FLAGS.init_checkpoint)
    check_vocab_matches_config(FLAGS.vocab_file, vocab_size, FLAGS.bert_config_file)
    return FullTokenizer(FLAGS.vocab_file, do_lower_case=FLAGS.do_lower_case,
                         tokenizer=FLAGS.tokenizer, subchar=FLAGS.subchar,
                         required_tokens=required_tokens)
