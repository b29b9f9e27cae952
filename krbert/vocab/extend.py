"""Growing a BERT model's vocabulary: new tokens after the old ones, the checkpoint grown to match.

``extend_vocab.py`` is the command line; this module holds the steps.

Tokens are written as a vocabulary writes them: ``abc`` starts a word (or is a whole word),
``##abc`` continues one. They come from a file (one a line, in the order given) or are chosen
from a corpus (``choose_tokens``) with the vocabulary builder's own steps:

  1. the corpus lines are sampled and split into words as ``builder.build_vocab`` does
     (BasicTokenizer; NFKD-decomposed first with ``subchar``);
  2. the builder's BPE (``builder.learn_tokens``) learns CANDIDATES_PER_TOKEN times as many
     multi-character pieces of the domain's words as tokens are asked for; the domain's
     characters, bare and as ##character, join them;
  3. a candidate is kept when the model's vocabulary lacks it and its tokenizer splits it
     into several pieces or [UNK];
  4. the corpus words are tokenized (the model's tokenizer: wordpiece or bidirectional) with
     the old vocabulary plus every candidate; the candidates produced most often are taken,
     ties in code point order, and counted again with the old vocabulary plus those alone:
     that count is the frequency in the report, and the new tokens follow it.

Growing (``grow_arrays``): every old token keeps its id and the new ones follow. The word
embeddings [V, H] become [V + N, H] and the masked-LM output bias [V] becomes [V + N]; the row
(and bias) of a new token is the mean of those of the pieces the old tokenizer gives for it
(computed in float64, stored as float32). Their Adam slots, when the checkpoint has them, get
zero rows, the state of a fresh optimizer. Every other variable is written back unchanged.

The bidirectional tokenizer ranks tokens by id (smaller is more frequent). Old ids cannot move
(the model's rows are addressed by them), so new tokens rank after every old token, among
themselves in the order they are listed: by frequency when chosen from a corpus, the file's
order otherwise. A word with a new token as its whole text takes it (both directions do);
otherwise greedy matching in both directions finds new pieces, and where the two splits
differ, the more frequent old pieces decide as before.

Sub-character models read text NFKD-decomposed into jamo, so their tokens are in that form:
a token file's tokens are decomposed the same way (a syllable token could never match), and
tokens chosen from a corpus are learned from decomposed text.
"""

import collections
import json
import re
import unicodedata

import numpy as np
from tqdm import tqdm

import tokenization
from krbert import cli
from krbert.bert_config import BertConfig
from krbert.files import reading as file_reading
from krbert.tf_compat import tf
from krbert.tokenizers.bidirectional import BidirectionalWordpieceTokenizer, to_subchar
from krbert.vocab import builder

EMBEDDINGS = "bert/embeddings/word_embeddings"
OUTPUT_BIAS = "cls/predictions/output_bias"
GROWN = (EMBEDDINGS, OUTPUT_BIAS)
CANDIDATES_PER_TOKEN = 3
"""BPE learns this many domain pieces per token asked for; the most frequent are kept."""
MAX_ALPHABET = 5000
"""Characters of the corpus considered (the most frequent ones)."""
_SPECIAL_FORM = re.compile(r"^\[[^\[\]]+\]$")


# ----------------------------------------------------------------------------- tokens


def read_token_file(path, subchar=False):
    """[(where, token)] of a file holding one token a line ("path:line" for messages).

    Blank lines are skipped; a line is stripped of the whitespace around it. With
    ``subchar`` a token is NFKD-decomposed, as the text will be.
    """
    entries = []
    for number, raw in enumerate(file_reading.read_lines(path), 1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise cli.InputError("%s:%d: not UTF-8; save the token file as UTF-8" % (path, number))
        if line:
            entries.append(("%s:%d" % (path, number), to_subchar(line) if subchar else line))
    if not entries:
        raise cli.InputError("%s: holds no token; write one token a line" % path)
    return entries


def _word_form_problem(token, basic, continuation_tokens):
    """Why ``token`` could never be produced as written, or None."""
    if any(char.isspace() for char in token):
        return "holds whitespace; write one token a line, without spaces inside"
    if _SPECIAL_FORM.match(token):
        return ("has the form of a special token; special tokens have no trained row to "
                "start from and cannot be added")
    text = token[2:] if token.startswith("##") else token
    if not text:
        return "is an empty piece; write the piece's text after ##"
    if token.startswith("##") and not continuation_tokens:
        return ("is a word-internal piece, never matched at a word's start; write %s to add "
                "the word, or pass --continuation_tokens to add %s itself" % (text, token))
    if len(text) > tokenization.MAX_INPUT_CHARS_PER_WORD:
        return "is longer than %d characters (such words are [UNK])" % (
            tokenization.MAX_INPUT_CHARS_PER_WORD)
    words = basic.tokenize(text)
    if words != [text]:
        return ("becomes %s after the basic tokenizer (punctuation, CJK characters and casing "
                "split or change words), so it could never be produced; add %s"
                % (" ".join(words) or "nothing", " and ".join(words) or "another token"))
    return None


def check_new_tokens(entries, vocab, do_lower_case=False, continuation_tokens=False):
    """Raises InputError "where: token ...; what to do" for the first token that cannot be
    added: whitespace inside, a special-token form, a ## piece where the word is meant
    (unless ``continuation_tokens``), a text the basic tokenizer changes, a repeat, or a
    token the vocabulary already has. Returns the tokens."""
    basic = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
    first = {}
    for where, token in entries:
        problem = _word_form_problem(token, basic, continuation_tokens)
        if problem is None and token in first:
            problem = "is listed twice (first at %s); remove one" % first[token]
        if problem is None and token in vocab:
            problem = "is already in the vocabulary (id %d); remove it" % vocab[token]
        if problem:
            raise cli.InputError("%s: token %r %s" % (where, token, problem))
        first[token] = where
    return [token for _, token in entries]


_SYLLABLES = re.compile("[\uac00-\ud7a3]")
_JAMO = re.compile("[\u1100-\u11ff]")


def check_subchar_matches_vocab(subchar, vocab, vocab_file):
    """InputError when --subchar meets a syllable vocabulary (more tokens with Hangul
    syllables than with conjoining jamo): the decomposed text and tokens would never match
    it, every new row would start from [UNK]'s."""
    if not subchar:
        return
    syllable_lines = [i for token, i in vocab.items() if _SYLLABLES.search(token)]
    jamo_tokens = sum(1 for token in vocab if _JAMO.search(token))
    if len(syllable_lines) > jamo_tokens:
        raise cli.InputError(
            "%s:%d: a syllable vocabulary (%d tokens with Hangul syllables, %d with jamo), but "
            "--subchar decomposes the text and the new tokens into jamo, which it never "
            "matches; drop --subchar, or pass the sub-character model's vocabulary"
            % (vocab_file, min(syllable_lines) + 1, len(syllable_lines), jamo_tokens))


# ----------------------------------------------------------------------------- old pieces


def make_tokenizer(vocab, mode):
    """The word-level tokenizer of ``mode`` ("wordpiece" or "bidirectional") over ``vocab``."""
    if mode == "bidirectional":
        return BidirectionalWordpieceTokenizer(vocab=vocab)
    return tokenization.WordpieceTokenizer(vocab=vocab)


def old_pieces(token, tokenizer):
    """The pieces the tokenizer gives for ``token``: a word's split for "abc"; for "##abc" the
    greedy longest-match split of "abc" into ## pieces, as inside a word ([UNK] if one is
    missing)."""
    if not token.startswith("##"):
        return tokenizer.tokenize_word(token)
    text, start, pieces = token[2:], 0, []
    while start < len(text):
        for end in range(len(text), start, -1):
            if "##" + text[start:end] in tokenizer.vocab:
                break
        else:
            return [tokenizer.unk_token]
        pieces.append("##" + text[start:end])
        start = end
    return pieces


def splits_finely(pieces, unk_token=tokenization.UNK_TOKEN):
    """True when the old split of a token is several pieces or [UNK]."""
    return len(pieces) > 1 or pieces == [unk_token]


# ----------------------------------------------------------------------------- choosing


def count_tokens(words, tokens, mode):
    """Counter: how often each token is produced when the ``mode`` tokenizer, with the
    vocabulary ``tokens`` (ids in list order), splits the words (a Counter word -> count)."""
    splitter = make_tokenizer(collections.OrderedDict((t, i) for i, t in enumerate(tokens)),
                              mode)
    counts = collections.Counter()
    for word, count in words.items():
        for piece in splitter.tokenize_word(word):
            counts[piece] += count
    return counts


COMPRESSED_MAGIC = ((b"BZh", "bz2", "bunzip2 -k"), (b"\x1f\x8b", "gzip", "gunzip -k"))
"""The first bytes of compressed files, named, with the command that unpacks them."""


def _not_text(path, number, offset, error, line):
    """The InputError of a corpus line that is not UTF-8 (a compressed file says so)."""
    if number == 1:
        for magic, kind, command in COMPRESSED_MAGIC:
            if line.startswith(magic):
                return cli.InputError("%s: a %s-compressed file, not text; unpack it first "
                                      "(%s) and pass the text" % (path, kind, command))
    return cli.InputError("%s:%d: not valid UTF-8 (at byte offset %d of the file); save the "
                          "file as UTF-8 or remove the line"
                          % (path, number, offset + error.start))


def corpus_lines(files, progress=True):
    """Yields the non-blank lines of the files in order (str, line end removed).

    Bytes that are not UTF-8 are an InputError naming the file, line and byte offset (a
    token learned from them would be junk); so is a compressed file.
    """
    total = sum(tf.io.gfile.stat(path).length for path in files)
    bar = tqdm(total=total, mininterval=builder.PROGRESS_SECONDS, unit="B", unit_scale=True,
               desc="reading and sampling", disable=None if progress else True)
    for path in files:
        offset = 0
        for number, raw in enumerate(file_reading.read_lines(path, bar.update), 1):
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError as e:
                bar.close()
                raise _not_text(path, number, offset, e, raw)
            offset += len(raw) + 1
            if line.strip():
                yield line
    bar.close()


def corpus_words(files, do_lower_case, subchar, sample_size, seed, progress):
    """(sampled lines, word Counter) of the corpus, as the vocabulary builder reads it."""
    lines, _ = builder.sample_lines(corpus_lines(files, progress), sample_size, seed)
    if not lines:
        raise cli.InputError("%s: no text (every line is empty); pass the domain's corpus"
                             % ",".join(files))
    return lines, builder.count_words(lines, do_lower_case, subchar, progress)


def candidate_tokens(words, vocab, tokenizer, num_tokens, min_count, num_threads, progress):
    """Domain tokens the vocabulary lacks and splits finely: the builder's BPE pieces of the
    words, then the words' characters (bare and ##), each once."""
    alphabet = builder.choose_alphabet(words, MAX_ALPHABET)
    pairs = builder.trainable_words(words, alphabet, min_count)
    pieces = builder.learn_tokens(pairs, alphabet, CANDIDATES_PER_TOKEN * num_tokens,
                                  num_threads, progress) if pairs else []
    chars = builder.character_counts(words)
    singles = [form for char in alphabet if chars[char] >= min_count
               for form in (char, "##" + char)]
    seen, candidates = set(vocab), []
    for token in pieces + singles:
        if token not in seen and splits_finely(old_pieces(token, tokenizer)):
            seen.add(token)
            candidates.append(token)
    return candidates


def choose_tokens(words, vocab, num_tokens, mode="wordpiece", min_count=2, num_threads=1,
                  progress=True):
    """(tokens, candidates considered): the ``num_tokens`` candidates the tokenizer produces
    most often on the words (fewer when fewer are ever produced), most frequent first."""
    tokenizer = make_tokenizer(vocab, mode)
    candidates = candidate_tokens(words, vocab, tokenizer, num_tokens, min_count, num_threads,
                                  progress)
    counts = count_tokens(words, list(vocab) + candidates, mode)
    ranked = sorted((t for t in candidates if counts[t] > 0), key=lambda t: (-counts[t], t))
    chosen = ranked[:num_tokens]
    if not chosen:
        raise cli.InputError("the corpus holds no word the vocabulary splits into several "
                             "pieces or [UNK] at least --min_count times; pass more text")
    final = count_tokens(words, list(vocab) + chosen, mode)
    chosen.sort(key=lambda t: (-final[t], t))
    return chosen, len(candidates)


# ----------------------------------------------------------------------------- the model


def load_model(vocab_file, config_file, arrays, checkpoint):
    """(vocab, BertConfig) checked against each other and the checkpoint's arrays.

    Raises InputError in one line when the vocabulary's size, the config and the checkpoint's
    shapes (word embeddings, output bias, hidden size, layers) disagree.
    """
    config = BertConfig.from_json_file(config_file)
    vocab = tokenization.load_vocab(vocab_file, required_tokens=(tokenization.UNK_TOKEN,))
    tokenization.check_vocab_matches_config(vocab_file, config.vocab_size, config_file)
    if EMBEDDINGS not in arrays:
        raise cli.InputError("--init_checkpoint=%s has no %s; give a BERT checkpoint"
                             % (checkpoint, EMBEDDINGS))
    wanted = {EMBEDDINGS: [config.vocab_size, config.hidden_size],
              OUTPUT_BIAS: [config.vocab_size]}
    for name, shape in sorted(wanted.items()):
        if name in arrays and list(arrays[name].shape) != shape:
            raise cli.InputError(
                "--init_checkpoint=%s: %s has shape %s but %s (vocab_size %d, hidden_size %d) "
                "and %s (%d tokens) make it %s; pass the config and vocabulary the model was "
                "trained with" % (checkpoint, name, list(arrays[name].shape), config_file,
                                  config.vocab_size, config.hidden_size, vocab_file,
                                  len(vocab), shape))
    layers = set(int(m.group(1)) for m in
                 (re.match(r"bert/encoder/layer_(\d+)/", name) for name in arrays) if m)
    if len(layers) != config.num_hidden_layers:
        raise cli.InputError(
            "--init_checkpoint=%s has %d encoder layers but %s says num_hidden_layers=%d; "
            "pass the config the model was trained with"
            % (checkpoint, len(layers), config_file, config.num_hidden_layers))
    return vocab, config


def piece_ids(tokens, vocab, mode):
    """{new token: [old ids of the pieces the old tokenizer gives for it]}."""
    tokenizer = make_tokenizer(vocab, mode)
    return collections.OrderedDict(
        (token, [vocab[p] for p in old_pieces(token, tokenizer)]) for token in tokens)


def mean_rows(matrix, id_lists):
    """[N, ...]: row n is the mean of matrix[id_lists[n]], in float64, cast to matrix's dtype."""
    return np.stack([matrix[ids].astype(np.float64).mean(axis=0) for ids in id_lists]
                    ).astype(matrix.dtype)


def grow_arrays(arrays, id_lists):
    """A new {name: array}: word embeddings and output bias grown by mean rows, their slots
    ("<name>/...", e.g. Adam's adam_m, adam_v) by zero rows, the rest the very same arrays.
    Returns (arrays, names grown)."""
    grown, names = collections.OrderedDict(), []
    for name, value in arrays.items():
        base = next((g for g in GROWN if name == g or name.startswith(g + "/")), None)
        if base is None:
            grown[name] = value
            continue
        if name == base:
            extra = mean_rows(value, id_lists)
        else:
            extra = np.zeros((len(id_lists),) + value.shape[1:], value.dtype)
        grown[name] = np.concatenate([value, extra], axis=0)
        names.append(name)
    return grown, names


def grown_config_json(config, vocab_size):
    """The config's JSON text with the new vocab_size."""
    values = config.to_dict()
    values["vocab_size"] = vocab_size
    return json.dumps(values, indent=2, sort_keys=True) + "\n"


# ----------------------------------------------------------------------------- report


def token_rows(tokens, ids, vocab, frequencies, subchar):
    """The report's rows for the new tokens: id, token, frequency, old pieces."""
    inverse = {i: t for t, i in vocab.items()}
    rows = []
    for offset, token in enumerate(tokens):
        row = collections.OrderedDict([("id", len(vocab) + offset), ("token", token)])
        if subchar:
            row["composed"] = unicodedata.normalize("NFC", token)
        if frequencies is not None:
            row["frequency"] = frequencies.get(token, 0)
        row["old_pieces"] = [inverse[i] for i in ids[token]]
        rows.append(row)
    return rows


def format_report(report):
    """The report's text for people: the settings, before/after figures, the tokens."""
    lines = ["%s: %d tokens -> %d (%d new, %s)" % (
        report["output_dir"], report["old_vocab_size"], report["new_vocab_size"],
        len(report["tokens"]), report["how_chosen"])]
    for side in ("before", "after"):
        ev = report.get("eval_" + side)
        if ev:
            lines.append("  %-6s [UNK] rate %.6f, tokens per line %.3f, tokens per word %.4f "
                         "(%d lines of %s)" % (side, ev["unk_rate"], ev["tokens_per_line"],
                                               ev["tokens_per_word"], ev["lines"],
                                               report["eval_text"]))
    shown = report["tokens"][:20]
    lines.append("  first %d of the new tokens (id token%s <- old pieces):" % (
        len(shown), " frequency" if shown and "frequency" in shown[0] else ""))
    for row in shown:
        lines.append("    %d %s%s <- %s" % (row["id"], row.get("composed", row["token"]),
                                            " %d" % row["frequency"] if "frequency" in row
                                            else "", " ".join(row["old_pieces"])))
    return "\n".join(lines)
