"""Learning a character-level BERT WordPiece vocabulary (KR-BERT style) with sentencepiece.

``build_vocab.py`` is the command line; this module holds the steps, so tests and
benchmarks can call them without flags.

  1. Read the input lines through tf.io.gfile and keep a deterministic sample of at most
     ``input_sentence_size`` of them (reservoir sampling seeded by ``seed``: memory holds
     the sample only, whatever the corpus size).
  2. Split every sampled line exactly as ``tokenization.BasicTokenizer`` does (after NFKD
     decomposition with ``subchar``, as ``FullTokenizer(subchar=True)`` does) and count
     the words.
  3. Keep the ``max_alphabet`` most frequent characters. A word holding any other
     character is [UNK] for WordPiece anyway, so it is left out of the piece learning, as
     are words seen fewer than ``min_word_count`` times.
  4. Learn multi-character pieces with sentencepiece: BPE over the word counts, no Unicode
     normalization, pieces never cross a word boundary ("▁" marks a word start).
  5. Assemble the BERT WordPiece vocabulary:
       [PAD] [UNK] [CLS] [SEP] [MASK]                         ids 0-4
       every kept character, bare and as ##character
       multi-character pieces: word-initial ones bare ("▁abc" -> "abc"), word-internal
       ones with ## ("abc" -> "##abc"); the earliest-learned ones fill the room left, so
       the vocabulary has exactly ``vocab_size`` tokens.
     After the special tokens, tokens are ordered by frequency, defined as the number of
     times the token is produced when the sampled training text is tokenized with the new
     vocabulary by ``tokenization.WordpieceTokenizer`` (greedy longest-match-first, the
     rule of ``FullTokenizer``). Ties, among them the tokens never produced, are broken by
     code point order of the token. The bidirectional tokenizer relies on this order.

Same input and settings give the same tokens in the same order: the sample is seeded,
words reach sentencepiece in a fixed order with its own sampling and shuffling off, BPE
has no random step, and the final order is a total order on (frequency, token).
"""

import collections
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import sentencepiece as spm
from tqdm import tqdm

import tokenization
from krbert.cli import InputError
from krbert.files import atomic, paths
from krbert.files import reading as file_reading
from krbert.tf_compat import tf
from krbert.tokenizers.bidirectional import to_subchar

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SP_SPACE = u"\u2581"  # sentencepiece's word-start marker
MAX_WORD_CHARS = tokenization.MAX_INPUT_CHARS_PER_WORD  # longer words are [UNK]
MAX_PIECE_CHARS = 16  # sentencepiece's max_sentencepiece_length
SP_TRAIN = ("import json, sys, sentencepiece; "
            "sentencepiece.SentencePieceTrainer.train(**json.load(sys.stdin))")
READ_BLOCK = 1 << 22
PROGRESS_SECONDS = 1.0  # tqdm refresh interval


def _progress(iterable=None, show=True, **kwargs):
    """A tqdm bar on stderr, refreshed at most once a second.

    Shown when `show` and stderr is a terminal, so logs and error output stay clean.
    """
    return tqdm(iterable, mininterval=PROGRESS_SECONDS, disable=None if show else True,
                **kwargs)


def _note(message, show=True):
    """A progress message on stderr, under the same condition as the bars."""
    if show and sys.stderr.isatty():
        tqdm.write(message, file=sys.stderr)


# ----------------------------------------------------------------------------- input


def iter_lines(files, progress=True):
    """Yields the non-blank lines of the files in order, as str without the line end.

    Reads 4 MB blocks through tf.io.gfile; bytes that are not UTF-8 are dropped, as
    tokenization.convert_to_unicode does.
    """
    total = sum(tf.io.gfile.stat(path).length for path in files)
    bar = _progress(total=total, show=progress, unit="B", unit_scale=True,
                    desc="reading and sampling")
    for path in files:
        for raw in file_reading.read_lines(path, bar.update, READ_BLOCK):
            line = raw.decode("utf-8", "ignore").rstrip("\r")
            if line.strip():
                yield line
    bar.close()


def sample_lines(lines, size, seed):
    """A uniform sample of at most `size` lines (every line when size <= 0), in input order.

    Reservoir sampling (Algorithm R) with random.Random(seed): memory holds `size` lines
    whatever the input length, and the same input and seed give the same sample.
    Returns (sampled lines, number of lines read).
    """
    if size <= 0:
        kept = list(lines)
        return kept, len(kept)
    rng = random.Random(seed)
    reservoir = []
    seen = 0
    for line in lines:
        if seen < size:
            reservoir.append((seen, line))
        else:
            slot = rng.randrange(seen + 1)
            if slot < size:
                reservoir[slot] = (seen, line)
        seen += 1
    reservoir.sort(key=lambda item: item[0])
    return [line for _, line in reservoir], seen


# ----------------------------------------------------------------------------- words


def normalize(text, subchar):
    """The text the tokenizer splits: NFKD-decomposed (syllables -> jamo) with subchar."""
    return to_subchar(text) if subchar else text


def count_words(lines, do_lower_case=False, subchar=False, progress=True):
    """Counter of the words tokenization.BasicTokenizer makes of the lines.

    BasicTokenizer never joins text across a plain space, so each space-separated chunk
    is split once and its words counted as often as the chunk occurs: the counts equal
    those of running BasicTokenizer on every line, at a fraction of the time.
    """
    chunks = collections.Counter()
    for line in _progress(lines, show=progress, desc="counting", unit=" lines"):
        chunks.update(normalize(line, subchar).split(" "))
    basic = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
    words = collections.Counter()
    for chunk, count in chunks.items():
        for word in basic.tokenize(chunk):
            words[word] += count
    return words


def character_counts(words):
    """Counter of the characters of the words WordPiece can split (not too long)."""
    chars = collections.Counter()
    for word, count in words.items():
        if len(word) <= MAX_WORD_CHARS:
            for char in word:
                chars[char] += count
    return chars


def choose_alphabet(words, max_alphabet):
    """The max_alphabet most frequent characters of the words (ties by code point)."""
    ranked = sorted(character_counts(words).items(), key=lambda item: (-item[1], item[0]))
    return [char for char, _ in ranked[:max_alphabet]]


def check_room_for_alphabet(words, alphabet, vocab_size):
    """InputError when vocab_size, not --max_alphabet, would leave characters out.

    Every character takes two tokens (bare and ##) after the special ones. Leaving the
    rarer ones out is a choice made with --max_alphabet, never silently.
    """
    room = (vocab_size - len(SPECIAL_TOKENS)) // 2
    if len(alphabet) <= room:
        return
    counts = character_counts(words)
    lost = sum(counts[char] for char in alphabet[room:]) / float(sum(counts.values()))
    raise InputError(
        "--vocab_size=%d has room for %d of the %d characters to keep (each takes a bare and "
        "a ## token after the %d special ones); words with the other %d (%.1f%% of the "
        "characters) would be [UNK]: pass --vocab_size=%d or more, or --max_alphabet=%d to "
        "leave them out knowingly" % (vocab_size, room, len(alphabet), len(SPECIAL_TOKENS),
                                      len(alphabet) - room, 100.0 * lost,
                                      len(SPECIAL_TOKENS) + 2 * len(alphabet), room))


def trainable_words(words, alphabet, min_count=1):
    """(word, count) pairs sentencepiece learns from, in a fixed order (count desc, word).

    Left out: words seen fewer than min_count times, words WordPiece can only make [UNK]
    of (a character outside the alphabet, or too long) and words holding "▁".
    """
    alphabet = set(alphabet)
    kept = [(word, count) for word, count in words.items()
            if count >= min_count and len(word) <= MAX_WORD_CHARS and SP_SPACE not in word
            and set(word) <= alphabet]
    kept.sort(key=lambda item: (-item[1], item[0]))
    return kept


# ----------------------------------------------------------------------------- pieces


def train_sentencepiece(pairs, sp_vocab_size, num_threads, workdir):
    """Trains sentencepiece BPE on (word, count) pairs; returns the SentencePieceProcessor.

    The training runs in a child Python that imports sentencepiece only: with TensorFlow
    1.15 loaded first, sentencepiece's trainer crashes the process (their protobuf
    libraries clash); loading and using the model afterwards is fine.
    """
    path = os.path.join(workdir, "words.tsv")
    with io.open(path, "w", encoding="utf-8", newline="\n") as out:
        for word, count in pairs:
            out.write(u"%s\t%d\n" % (word, count))
    prefix = os.path.join(workdir, "bpe")
    options = dict(
        input=path, input_format="tsv", model_prefix=prefix, model_type="bpe",
        vocab_size=sp_vocab_size, hard_vocab_limit=False, character_coverage=1.0,
        normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, split_by_whitespace=True,
        max_sentencepiece_length=MAX_PIECE_CHARS, input_sentence_size=0,
        shuffle_input_sentence=False, num_threads=num_threads,
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2)
    child = subprocess.Popen([sys.executable, "-c", SP_TRAIN], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, errors = child.communicate(json.dumps(options).encode("utf-8"))
    if child.returncode != 0:
        last = (errors.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise InputError("sentencepiece could not learn pieces from %d words (%s); add text "
                         "or lower --vocab_size" % (len(pairs), last))
    processor = spm.SentencePieceProcessor()
    processor.Load(prefix + ".model")
    return processor


def piece_uses(processor, pairs):
    """(texts sentencepiece puts at a word start, texts it puts inside a word) on the words.

    A piece "▁abc" starts a word; so does "abc" right after a lone "▁" (sentencepiece
    splits "▁" off when no piece joins it to the next characters); any other piece is
    inside a word. Texts are without "▁".
    """
    starts, insides = set(), set()
    for word, _ in pairs:
        after_space = False
        for piece in processor.EncodeAsPieces(word):
            if piece == SP_SPACE:
                after_space = True
            elif piece.startswith(SP_SPACE):
                starts.add(piece[1:])
            elif after_space:
                starts.add(piece)
                after_space = False
            else:
                insides.add(piece)
    return starts, insides


def multi_char_tokens(pieces, starts, insides, alphabet):
    """WordPiece forms of the multi-character sentencepiece pieces, in sentencepiece order.

    A piece's text is written bare when sentencepiece uses it at a word start and with
    "##" when it uses it inside a word (both, when both). Pieces it never uses (BPE's
    intermediate merges), single characters (the alphabet supplies them), pieces with a
    character outside the alphabet and repeats are skipped.
    """
    alphabet = set(alphabet)
    seen = set()
    tokens = []
    for piece in pieces:
        text = piece[1:] if piece.startswith(SP_SPACE) else piece
        if len(text) < 2 or not set(text) <= alphabet:
            continue
        forms = ([text] if text in starts else []) + (["##" + text] if text in insides else [])
        for token in forms:
            if token not in seen:
                seen.add(token)
                tokens.append(token)
    return tokens


def learn_tokens(pairs, alphabet, n_multi, num_threads=1, progress=True):
    """At least n_multi multi-character WordPiece tokens learned from the pairs, best first.

    Fewer only when the words do not hold that many. Sentencepiece counts its characters
    and its "▁x" pieces in its vocabulary size, so it is asked for n_multi plus both; if
    conversion still leaves too few, it is trained once more with the shortfall added.
    """
    if n_multi <= 0:
        return []
    if not pairs:
        raise InputError("no word is left to learn pieces from (every word is rarer than "
                         "--min_word_count or holds a character beyond --max_alphabet); "
                         "lower those or add text")
    n_chars = len(set(char for word, _ in pairs for char in word))
    sp_size = n_multi + 2 * n_chars + 2
    workdir = tempfile.mkdtemp(prefix="build_vocab.")
    try:
        for _ in range(3):
            _note("sentencepiece: BPE on %d words, %d pieces" % (len(pairs), sp_size),
                  progress)
            processor = train_sentencepiece(pairs, sp_size, num_threads, workdir)
            pieces = [processor.IdToPiece(i) for i in range(processor.GetPieceSize())
                      if not (processor.IsUnknown(i) or processor.IsControl(i))]
            starts, insides = piece_uses(processor, pairs)
            tokens = multi_char_tokens(pieces, starts, insides, alphabet)
            if len(tokens) >= n_multi or len(pieces) < sp_size - 1:
                break  # enough, or sentencepiece ran out of merges
            sp_size += n_multi - len(tokens) + 16
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return tokens


# ----------------------------------------------------------------------------- vocabulary


def token_counts(words, tokens, progress=True):
    """How often each token is produced when tokenization.WordpieceTokenizer splits the words."""
    splitter = tokenization.WordpieceTokenizer(vocab=dict((t, i) for i, t in enumerate(tokens)))
    counts = collections.Counter()
    for word, count in _progress(words.items(), show=progress, desc="ordering", unit=" words"):
        for token in splitter.tokenize_word(word):
            counts[token] += count
    return counts


def order_by_frequency(tokens, counts):
    """Tokens sorted by count (descending), ties by code point order of the token."""
    return sorted(tokens, key=lambda token: (-counts.get(token, 0), token))


def assemble_vocab(alphabet, multi, vocab_size, words, progress=True):
    """Special tokens, then the characters (both forms) and pieces that fit, by frequency."""
    singles = list(alphabet) + ["##" + char for char in alphabet]
    room = vocab_size - len(SPECIAL_TOKENS) - len(singles)
    body = singles + [t for t in multi if t not in SPECIAL_TOKENS][:room]
    counts = token_counts(words, SPECIAL_TOKENS + body, progress)
    return SPECIAL_TOKENS + order_by_frequency(body, counts)


def check_vocab(tokens, vocab_size):
    """Raises AssertionError unless tokens has vocab_size unique tokens without whitespace."""
    assert len(tokens) == vocab_size, (len(tokens), vocab_size)
    assert len(set(tokens)) == len(tokens), "duplicate tokens"
    assert all(t and not any(c.isspace() for c in t) for t in tokens), "whitespace in a token"


def build_vocab(files, vocab_size=20000, do_lower_case=False, subchar=False,
                max_alphabet=5000, input_sentence_size=0, min_word_count=1, num_threads=1,
                seed=12345, progress=True):
    """Steps 1-5 on the input files; returns (tokens, statistics as an OrderedDict)."""
    lines, n_input = sample_lines(iter_lines(files, progress), input_sentence_size, seed)
    n_sampled = len(lines)
    if not lines:
        raise InputError("%s: no text (every line is empty); pass a non-empty corpus"
                         % ",".join(files))
    words = count_words(lines, do_lower_case, subchar, progress)
    del lines[:]
    if not words:
        raise InputError("%s: no words (only control characters); pass a corpus with text"
                         % ",".join(files))
    alphabet = choose_alphabet(words, max_alphabet)
    check_room_for_alphabet(words, alphabet, vocab_size)
    n_multi = vocab_size - len(SPECIAL_TOKENS) - 2 * len(alphabet)
    pairs = trainable_words(words, alphabet, min_word_count)
    multi = learn_tokens(pairs, alphabet, n_multi, num_threads, progress)
    if len(multi) < n_multi:
        raise InputError(
            "%s: the text yields only %d tokens but vocab_size=%d; lower --vocab_size "
            "(or --min_word_count) or add text"
            % (",".join(files), len(SPECIAL_TOKENS) + 2 * len(alphabet) + len(multi),
               vocab_size))
    tokens = assemble_vocab(alphabet, multi, vocab_size, words, progress)
    check_vocab(tokens, vocab_size)
    stats = collections.OrderedDict([
        ("input_lines", n_input), ("sampled_lines", n_sampled),
        ("training_words", sum(words.values())), ("distinct_words", len(words)),
        ("piece_training_words", len(pairs)), ("alphabet_size", len(alphabet)),
        ("multi_char_tokens", n_multi)])
    return tokens, stats


def vocab_text(tokens):
    """The vocabulary file's text: one token per line, LF."""
    return u"".join(token + u"\n" for token in tokens)


def write_vocab(tokens, path):
    """Writes the vocabulary (UTF-8), atomically (atomic.write_text_atomic)."""
    atomic.write_text_atomic(path, vocab_text(tokens))


# ----------------------------------------------------------------------------- evaluation


NSMC_QUOTE_ROUNDS = 2
"""Layers of CSV quoting removed from an --eval_column field, as the NSMC reader
(krbert.classifier.tasks.NsmcProcessor) removes them from a review."""


def read_eval_texts(path, column=None):
    """Texts of an eval file: every line, or one column of a TSV with a header line. A
    line that is not UTF-8 stops the run with path:line (InputError).

    A column is read by file_reading.read_tsv, as the classifier reads NSMC: the same rows,
    the same unquoting (NSMC_QUOTE_ROUNDS), the same file:line errors.
    """
    paths.check_input_file(path, "--eval_file")
    if column:
        return [row[column] for _, row in
                file_reading.read_tsv(path, [column], quote_rounds={column: NSMC_QUOTE_ROUNDS})]
    return list(file_reading.read_text_lines(path))


def evaluate(vocab_file, texts, do_lower_case=False, tokenizer="wordpiece", subchar=False,
             progress=True):
    """[UNK] rate (of all tokens), tokens per word and per line of texts under FullTokenizer.

    Words are those of BasicTokenizer; an empty line counts as a line with no tokens.
    """
    full = tokenization.FullTokenizer(vocab_file, do_lower_case=do_lower_case,
                                      tokenizer=tokenizer, subchar=subchar)
    n_tokens = n_unk = n_words = 0
    for text in _progress(texts, show=progress, desc="evaluating", unit=" lines"):
        tokens = full.tokenize(text)
        n_tokens += len(tokens)
        n_unk += tokens.count("[UNK]")
        n_words += len(full.basic_tokenizer.tokenize(normalize(text, subchar)))
    return collections.OrderedDict([
        ("vocab_file", vocab_file), ("tokenizer", tokenizer),
        ("lines", len(texts)), ("words", n_words), ("tokens", n_tokens),
        ("unk_tokens", n_unk),
        ("unk_rate", n_unk / float(max(n_tokens, 1))),
        ("tokens_per_word", n_tokens / float(max(n_words, 1))),
        ("tokens_per_line", n_tokens / float(max(len(texts), 1))),
    ])


def format_evaluation(ev):
    """The lines of an evaluate() result for people."""
    return "\n".join([
        "%s on %d lines (%d words): %d tokens" % (ev["vocab_file"], ev["lines"], ev["words"],
                                                  ev["tokens"]),
        "  [UNK] rate       %.6f (%d tokens)" % (ev["unk_rate"], ev["unk_tokens"]),
        "  tokens per word  %.4f" % ev["tokens_per_word"],
        "  tokens per line  %.4f" % ev["tokens_per_line"],
    ])
