# -*- coding: utf-8 -*-
"""Tests for tokenization.py and krbert/tokenizers/bidirectional.py.

Expected outputs are worked out by hand from the rules of the original BERT tokenizer and
of KR-BERT's BidirectionalWordPiece; the equivalence tests compare the pure-Python fast path
with the plain per-character implementation kept in the module, on random Unicode and NSMC
reviews (tests/test_fast_tokenizer.py does the same for the C path). Tests of FullTokenizer
with cased text run on both paths (the `implementation` fixture).
"""

import ast
import io
import os
import random
import types

import pytest
from absl import flags as absl_flags

import tokenization
from conftest import ROOT, shipped_or_published
from krbert import bert_config
from krbert.classifier import tasks
from krbert.cli import InputError
from krbert.tokenizers import fast as fast_tokenization
from krbert.tokenizers.bidirectional import to_subchar

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SHIPPED_VOCAB = os.path.join(ROOT, "vocab", "vocab_20000.txt")


def write_vocab(tmp_path, tokens, name="vocab.txt"):
    path = str(tmp_path / name)
    with io.open(path, "w", encoding="utf-8") as f:
        f.write(u"".join(token + u"\n" for token in tokens))
    return path


def nsmc_documents(data_dir):
    """The reviews of NSMC's test split, read as run_classifier.py reads them."""
    split = tasks.get_processor("nsmc").read_split(
        os.path.join(data_dir, "nsmc"), "test")
    return [example.text for example in split.examples]


def vocab_path(request, name):
    """The shipped vocabulary for "shipped", else the published KR-BERT vocabulary ``name``
    (the test is skipped, with its reason, when those are missing)."""
    return shipped_or_published(request, name, SHIPPED_VOCAB)


@pytest.fixture(params=["fast", "reference"])
def basic(request):
    """basic(text, lower) -> words, through the fast path or the per-character one."""
    def run(text, do_lower_case=False):
        tokenizer = tokenization.BasicTokenizer(do_lower_case=do_lower_case)
        if request.param == "fast":
            return tokenizer.tokenize(text)
        return tokenizer.reference_tokenize(text)
    return run


@pytest.fixture(params=["default", "pure Python"])
def implementation(request, monkeypatch):
    """Runs a test on FullTokenizer's default path (C for cased text) and on pure Python."""
    if request.param == "pure Python":
        monkeypatch.setenv(fast_tokenization.PURE_PYTHON_ENV, "1")
    else:
        monkeypatch.delenv(fast_tokenization.PURE_PYTHON_ENV, raising=False)
    return request.param


@pytest.fixture
def pure_python(monkeypatch):
    """FullTokenizers built in the test run the pure-Python path."""
    monkeypatch.setenv(fast_tokenization.PURE_PYTHON_ENV, "1")


# ---------------------------------------------------------------------------------------------
# The modules' layers.

TOKENIZER_LAYERS = [("krbert.tokenizers.wordpiece",), ("krbert.tokenizers.bidirectional",),
                    ("krbert.tokenizers.fast",), ("tokenization",)]


def project_imports(module_name):
    """(project modules imported at the top level, those imported inside functions)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, *module_name.split(".")) + ".py"
    with io.open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    top_level = set(tree.body)
    layered = {name for layer in TOKENIZER_LAYERS for name in layer}
    found = {True: set(), False: set()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + ["%s.%s" % (node.module, a.name) for a in node.names]
        else:
            continue
        found[node in top_level].update(name for name in names if name in layered)
    return found[True], found[False]


def test_tokenizer_modules_import_downward_only():
    for level, layer in enumerate(TOKENIZER_LAYERS):
        below = {name for lower in TOKENIZER_LAYERS[:level] for name in lower}
        for module_name in layer:
            top_level, in_functions = project_imports(module_name)
            assert top_level <= below, (module_name, top_level - below)
            assert not in_functions, (module_name, in_functions)
    assert project_imports("tokenization")[0] == {"krbert.tokenizers.wordpiece",
                                                  "krbert.tokenizers.bidirectional",
                                                  "krbert.tokenizers.fast"}


def test_tokenization_keeps_the_original_module_names():
    for name in ("FullTokenizer", "BasicTokenizer", "WordpieceTokenizer", "load_vocab",
                 "convert_by_vocab", "convert_tokens_to_ids", "convert_ids_to_tokens",
                 "convert_to_unicode", "printable_text", "whitespace_tokenize",
                 "_is_whitespace", "_is_control", "_is_punctuation"):
        assert callable(getattr(tokenization, name)), name
    assert tokenization._is_punctuation(u"-") and not tokenization._is_control(u"\t")


# ---------------------------------------------------------------------------------------------
# Module functions.

def test_convert_to_unicode_and_printable_text():
    assert tokenization.convert_to_unicode(u"영화".encode("utf-8")) == u"영화"
    assert tokenization.convert_to_unicode(b"ab\xffc") == u"abc"  # undecodable bytes dropped
    assert tokenization.printable_text(u"영화") == u"영화"
    with pytest.raises(ValueError):
        tokenization.convert_to_unicode(3)


def test_whitespace_tokenize():
    assert tokenization.whitespace_tokenize(u"  a \t b\n") == ["a", "b"]
    assert tokenization.whitespace_tokenize(u"   ") == []


def test_load_vocab_ids_are_line_numbers(tmp_path):
    path = str(tmp_path / "v.txt")
    with io.open(path, "wb") as f:
        f.write(u"\ufeff[PAD]\n  a \r\nb\n영화\nlast".encode("utf-8"))  # BOM, CRLF, no final \n
    vocab = tokenization.load_vocab(path)
    assert list(vocab.items()) == [("[PAD]", 0), ("a", 1), ("b", 2), (u"영화", 3), ("last", 4)]


@pytest.mark.parametrize("lines, where, what", [
    ([u"[UNK]", u"영화", u"a", u" 영화"], ":4:", u"'영화' is listed again (first at line 2)"),
    ([u"[UNK]", u"a", u"", u"b"], ":3:", "empty line"),
    ([u"[UNK]", u"a", u" \t"], ":3:", "empty line"),
    ([u"[UNK]", u"a", u"b", u""], ":4:", "empty line"),  # a blank line at the end
])
def test_load_vocab_refuses_what_would_shift_ids(tmp_path, lines, where, what):
    path = str(tmp_path / "v.txt")
    with io.open(path, "w", encoding="utf-8") as f:
        f.write(u"\n".join(lines) + u"\n")
    with pytest.raises(tokenization.TokenizerError) as error:
        tokenization.load_vocab(path)
    message = str(error.value)
    assert message.startswith(path + where) and what in message and "\n" not in message


def test_load_vocab_refuses_invalid_utf8_naming_the_line(tmp_path):
    path = str(tmp_path / "v.txt")
    with io.open(path, "wb") as f:
        f.write(b"[UNK]\nok\nbad\xff\xfe\nlast\n")
    with pytest.raises(InputError, match=r"v\.txt:3: line 'bad.*' is not valid UTF-8"):
        tokenization.load_vocab(path)


def test_missing_special_tokens_are_named(tmp_path):
    no_unk = write_vocab(tmp_path, ["[PAD]", "[CLS]", "[SEP]", "a"])
    with pytest.raises(tokenization.TokenizerError, match=r"v.*: the vocabulary has no \[UNK\]"):
        tokenization.FullTokenizer(no_unk, do_lower_case=False)
    no_mask = write_vocab(tmp_path, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], "no_mask.txt")
    tokenization.FullTokenizer(no_mask, do_lower_case=False)  # WordPiece needs [UNK] only
    with pytest.raises(InputError, match="no_mask.txt: the vocabulary has no \\[MASK\\]"):
        tokenization.load_vocab(no_mask, ("[CLS]", "[SEP]", "[MASK]"))
    with pytest.raises(InputError, match="missing.txt: the vocabulary could not be read"):
        tokenization.load_vocab(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("name", ["shipped", "vocab_krmedium_20000.txt", "vocab_char_16424.txt",
                                  "vocab_subchar_12367.txt"])
def test_vocabularies_load_with_line_numbers_as_ids(request, name):
    for path in [shipped_or_published(request, name, SHIPPED_VOCAB)]:
        with io.open(path, encoding="utf-8") as f:
            lines = f.read().split(u"\n")[:-1]
        vocab = tokenization.load_vocab(path, SPECIALS)
        assert list(vocab.items()) == [(line, i) for i, line in enumerate(lines)]


def test_convert_by_vocab(tmp_path):
    tokenizer = tokenization.FullTokenizer(write_vocab(tmp_path, SPECIALS + ["a", "##b"]))
    assert tokenizer.convert_tokens_to_ids(["a", "##b", "[UNK]"]) == [5, 6, 1]
    assert tokenizer.convert_ids_to_tokens([6, 0]) == ["##b", "[PAD]"]
    assert tokenization.convert_tokens_to_ids(tokenizer.vocab, ["a"]) == [5]
    assert tokenization.convert_ids_to_tokens(tokenizer.inv_vocab, [5]) == ["a"]
    with pytest.raises(KeyError):
        tokenizer.convert_tokens_to_ids(["missing"])


# ---------------------------------------------------------------------------------------------
# Basic tokenization rules (each through both implementations).

def test_whitespace_and_control_characters(basic):
    assert basic(u" a\tb\nc\rd ") == ["a", "b", "c", "d"]
    assert basic(u"a\u00a0b\u3000c") == ["a", "b", "c"]  # Zs separates
    assert basic(u"a\u2028b") == ["a", "b"]  # not Zs, but str.split's whitespace
    assert basic(u"a\x00b\ufffdc") == ["abc"]  # NUL and U+FFFD are dropped
    assert basic(u"a\u200bb\u200dc\x7fd") == ["abcd"]  # Cf and Cc are dropped
    assert basic(u"a\x0bb\x1cc\x85d") == ["abcd"]  # Cc even when str.split calls it space
    assert basic(u"") == [] and basic(u" \x00 ") == []


def test_punctuation_splitting(basic):
    assert basic(u"hi,there!!") == ["hi", ",", "there", "!", "!"]
    assert basic(u"$5^`~+=<>|") == ["$", "5", "^", "`", "~", "+", "=", "<", ">", "|"]
    assert basic(u"«x» ¿y? a·b") == ["«", "x", "»", "¿", "y", "?", "a", "·", "b"]
    assert basic(u"a…b“c”") == ["a", "…", "b", "“", "c", "”"]
    assert basic(u"a©b€c√d") == ["a©b€c√d"]  # symbols (S*) outside ASCII are not split
    assert basic(u"ㅋㅋ.ㅎㅎ") == ["ㅋㅋ", ".", "ㅎㅎ"]


def test_cjk_ideographs_stand_alone(basic):
    assert basic(u"ab中文cd") == ["ab", "中", "文", "cd"]
    for cp in (0x4E00, 0x9FFF, 0x3400, 0x4DBF, 0xF900, 0xFAFF, 0x20000, 0x2A6DF,
               0x2A700, 0x2B81F, 0x2B820, 0x2CEAF, 0x2F800, 0x2FA1F):
        assert basic(u"a%sb" % chr(cp)) == ["a", chr(cp), "b"], hex(cp)
    for cp in (0x4DC0, 0x3041, 0x30A2, 0xAC00, 0x2CEB0, 0x2FA20):  # outside the ranges
        assert basic(u"a%sb" % chr(cp)) == [u"a%sb" % chr(cp)], hex(cp)


def test_lower_casing_strips_accents(basic):
    assert basic(u"HeLLo Café", True) == ["hello", "cafe"]
    assert basic(u"HeLLo Café", False) == ["HeLLo", u"Café"]
    assert basic(u"ÜBER naïve", True) == ["uber", "naive"]
    assert basic(u"\u0130", True) == ["i"]  # "İ" lowers to i + U+0307, a mark
    assert basic(u"ΟΔΟΣ ΣΑ", True) == [u"\u03bf\u03b4\u03bf\u03c2", u"\u03c3\u03b1"]  # final ς
    assert basic(u"a\u0301", False) == [u"a\u0301"]  # a mark is kept without lower-casing
    assert basic(u"\u037e", True) == [";"]  # Greek question mark decomposes to ";"


def test_hangul_compatibility_jamo_and_emoji(basic):
    assert basic(u"영화가 재밌다!! ㅋㅋㅋ") == [u"영화가", u"재밌다", "!", "!", u"ㅋㅋㅋ"]
    assert basic(u"한", True) == [u"\u1112\u1161\u11ab"]  # lower-casing NFD-splits syllables
    assert basic(u"ㅋㅋ", True) == [u"ㅋㅋ"]  # compatibility jamo have no decomposition
    assert basic(u"좋아요😀👍 굿") == [u"좋아요😀👍", u"굿"]  # emoji (So) are not split off
    assert basic(u"👨\u200d👩") == [u"👨👩"]  # the zero-width joiner (Cf) is dropped
    assert basic(u"❤\ufe0f", False) == [u"❤\ufe0f"]
    assert basic(u"❤\ufe0f", True) == [u"❤"]  # variation selectors are Mn


def test_bytes_input(basic):
    assert basic(u"영화, 굿".encode("utf-8")) == [u"영화", ",", u"굿"]


# ---------------------------------------------------------------------------------------------
# WordPiece.

@pytest.fixture
def wordpiece():
    vocab = {token: i for i, token in enumerate(
        SPECIALS + ["un", "##aff", "##able", "a", "ab", "abc", "##d", "##a", "x"])}
    return tokenization.WordpieceTokenizer(vocab)


@pytest.mark.parametrize("method", ["tokenize", "reference_tokenize"])
def test_wordpiece_longest_match_first(wordpiece, method):
    run = getattr(wordpiece, method)
    assert run(u"unaffable") == ["un", "##aff", "##able"]
    assert run(u"abcd abd") == ["abc", "##d", "ab", "##d"]
    assert run(u"abce x") == ["[UNK]", "x"]  # one missing piece: the whole word is [UNK]
    assert run(u"xa") == ["x", "##a"]
    assert run(u"a" * 200) == ["a"] + ["##a"] * 199
    assert run(u"a" * 201) == ["[UNK]"]  # longer than 200 characters


def test_full_tokenizer_korean(tmp_path, implementation):
    vocab = write_vocab(tmp_path, SPECIALS + [u"영화", u"##가", u"재밌", u"##다", "!", u"ㅋㅋ",
                                              u"##ㅋ", u"굿"])
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
    pure = tokenizer.implementation == fast_tokenization.PYTHON_IMPLEMENTATION
    assert pure == (implementation == "pure Python")
    text = u"영화가 재밌다!! ㅋㅋㅋ 굿굿 😀"
    expected = [u"영화", u"##가", u"재밌", u"##다", "!", "!", u"ㅋㅋ", u"##ㅋ", "[UNK]", "[UNK]"]
    assert tokenizer.tokenize(text) == expected
    assert tokenizer.reference_tokenize(text) == expected
    assert tokenizer.tokenize(text.encode("utf-8")) == expected
    assert tokenizer.convert_tokens_to_ids(expected[:3]) == [5, 6, 7]


def test_word_cache_stays_bounded(tmp_path):
    tokenizer = tokenization.FullTokenizer(write_vocab(tmp_path, SPECIALS + ["a", "##a"]),
                                           cache_size=10)
    for n in range(1, 60):
        assert tokenizer.tokenize(u"a" * n) == ["a"] + ["##a"] * (n - 1)
    assert 0 < len(tokenizer._pieces.__self__) <= 10


# ---------------------------------------------------------------------------------------------
# Checks of settings.

def test_lower_casing_a_hangul_vocabulary_is_refused(tmp_path):
    vocab = write_vocab(tmp_path, SPECIALS + ["a", u"영화", u"##가"])
    with pytest.raises(tokenization.TokenizerError) as error:
        tokenization.FullTokenizer(vocab, do_lower_case=True)
    message = str(error.value)
    assert "--do_lower_case=False" in message and vocab in message and "\n" not in message
    assert isinstance(error.value, InputError) and isinstance(error.value, ValueError)
    tokenization.FullTokenizer(vocab, do_lower_case=False)
    tokenization.FullTokenizer(vocab, do_lower_case=True, check_case=False)
    jamo = write_vocab(tmp_path, SPECIALS + [u"\u1112\u1161\u11ab", u"##\u1100"], "jamo.txt")
    tokenization.FullTokenizer(jamo, do_lower_case=True)  # a jamo vocabulary suits lower case


def test_check_vocab_matches_config(tmp_path):
    vocab = write_vocab(tmp_path, SPECIALS + ["a", "b"])
    config = str(tmp_path / "bert_config.json")
    assert tokenization.check_vocab_matches_config(vocab, 7) == 7
    assert tokenization.check_vocab_matches_config(7, 7) == 7
    with pytest.raises(tokenization.TokenizerError) as error:
        tokenization.check_vocab_matches_config(vocab, 9, config)
    message = str(error.value)
    assert vocab in message and config in message and "7" in message and "9" in message
    with pytest.raises(ValueError, match="20000.*16424"):
        tokenization.check_vocab_matches_config(20000, 16424)


def test_check_vocab_matches_shipped_config():
    config = os.path.join(ROOT, "vocab", "bert_config_medium.json")
    size = bert_config.BertConfig.from_json_file(config).vocab_size
    assert tokenization.check_vocab_matches_config(SHIPPED_VOCAB, size) == size == 20000


def test_check_vocab_matches_shared_configs(krbert_dir):
    for vocab, config in [("vocab_krmedium_20000.txt", "bert_config_krmedium.json"),
                          ("vocab_char_16424.txt", "bert_config_char16424.json"),
                          ("vocab_subchar_12367.txt", "bert_config_subchar12367.json")]:
        size = bert_config.BertConfig.from_json_file(os.path.join(krbert_dir, config)).vocab_size
        assert tokenization.check_vocab_matches_config(os.path.join(krbert_dir, vocab),
                                                       size) == size


def test_check_case_matches_checkpoint():
    validate = tokenization.check_case_matches_checkpoint
    validate(True, "gs://b/uncased_L-12_H-768_A-12/bert_model.ckpt")
    validate(False, "/m/cased_L-12_H-768_A-12/bert_model.ckpt")
    validate(True, "/m/krbert_medium/bert_model.ckpt")  # unknown models pass
    validate(False, None)
    with pytest.raises(ValueError, match="--do_lower_case=True"):
        validate(False, "/m/uncased_L-12_H-768_A-12/bert_model.ckpt")
    with pytest.raises(ValueError, match="--do_lower_case=False"):
        validate(True, "/m/multi_cased_L-12_H-768_A-12/bert_model.ckpt")


def test_unknown_tokenizer_name(tmp_path):
    with pytest.raises(tokenization.TokenizerError, match="--tokenizer=ranked"):
        tokenization.FullTokenizer(write_vocab(tmp_path, SPECIALS), tokenizer="ranked")


def test_tokenizer_flags(tmp_path):
    values = absl_flags.FlagValues()
    fake_flags = types.SimpleNamespace(
        FLAGS=values,
        DEFINE_enum=lambda *a, **k: absl_flags.DEFINE_enum(*a, flag_values=values, **k),
        DEFINE_bool=lambda *a, **k: absl_flags.DEFINE_bool(*a, flag_values=values, **k))
    tokenization.define_tokenizer_flags(fake_flags)
    tokenization.define_tokenizer_flags(fake_flags)  # a second call is harmless
    values(["prog"])
    assert (values.tokenizer, values.subchar) == ("wordpiece", False)
    values(["prog", "--tokenizer=bidirectional", "--subchar"])
    assert (values.tokenizer, values.subchar) == ("bidirectional", True)
    with pytest.raises(absl_flags.IllegalFlagValueError):
        values(["prog", "--tokenizer=bert"])


# ---------------------------------------------------------------------------------------------
# KR-BERT's BidirectionalWordPiece and sub-characters.

def bidirectional(tmp_path, tokens, **kwargs):
    return tokenization.FullTokenizer(write_vocab(tmp_path, SPECIALS + tokens),
                                      do_lower_case=False, tokenizer="bidirectional", **kwargs)


@pytest.mark.parametrize("method", ["tokenize", "reference_tokenize"])
def test_bidirectional_more_frequent_pieces_win(tmp_path, method, implementation):
    # "abc": forward takes the longest start "ab" then "##c"; backward takes the longest
    # ending "##bc" then "a". Ids are ranks: the split whose sorted ids compare smaller wins.
    frequent_forward = bidirectional(tmp_path, ["ab", "##c", "a", "##bc"])
    assert getattr(frequent_forward, method)(u"abc") == ["ab", "##c"]  # [5, 6] < [7, 8]
    frequent_backward = bidirectional(tmp_path, ["a", "##bc", "ab", "##c"])
    assert getattr(frequent_backward, method)(u"abc") == ["a", "##bc"]
    # The most frequent piece decides, not the number of pieces or their sum: forward
    # "ab" "##c" "##d" = [8, 9, 5] holds the most frequent piece; backward "a" "##bcd" = [6, 7].
    three = bidirectional(tmp_path, ["##d", "a", "##bcd", "ab", "##c"])
    assert getattr(three, method)(u"abcd") == ["ab", "##c", "##d"]
    whole = bidirectional(tmp_path, ["abc", "a", "##bc", "ab", "##c"])
    assert getattr(whole, method)(u"abc") == ["abc"]


@pytest.mark.parametrize("method", ["tokenize", "reference_tokenize"])
def test_bidirectional_unknown_words(tmp_path, method, implementation):
    # Forward fails ("ab" then no "##c") while backward works ("a" + "##bc"): still [UNK].
    tokenizer = bidirectional(tmp_path, ["a", "ab", "##bc"])
    run = getattr(tokenizer, method)
    assert run(u"abc") == ["[UNK]"]
    assert run(u"abd ab") == ["[UNK]", "ab"]
    # Backward fails ("##bc" leaves "a", missing) while forward works ("ab" + "##c"): [UNK].
    backward_fails = bidirectional(tmp_path, ["ab", "##c", "##bc"])
    assert getattr(backward_fails, method)(u"abc ab") == ["[UNK]", "ab"]
    long_word = bidirectional(tmp_path, ["a", "##a"])
    assert getattr(long_word, method)(u"a" * 201 + u" aa") == ["[UNK]", "a", "##a"]


def test_bidirectional_on_the_char_vocabulary(krbert_dir, implementation):
    tokenizer = tokenization.FullTokenizer(os.path.join(krbert_dir, "vocab_char_16424.txt"),
                                           do_lower_case=False, tokenizer="bidirectional")
    vocab = tokenizer.vocab
    # The examples of KR-BERT's README.
    for word, pieces in [(u"냉장고", [u"냉장고"]), (u"춥다", [u"춥", u"##다"]),
                         (u"뱃사람", [u"뱃", u"##사람"]), (u"마이크", [u"마이크"])]:
        assert tokenizer.tokenize(word) == pieces
    # forward 영화 ##가 vs backward 영 ##화가: "##가" is more frequent than "영" and "##화가".
    assert vocab[u"##가"] < min(vocab[u"영"], vocab[u"##화가"], vocab[u"영화"])
    assert tokenizer.tokenize(u"영화가") == [u"영화", u"##가"]
    # forward 보이 ##던 ##데 vs backward 보 ##이던 ##데: "보" is the most frequent of all.
    assert vocab[u"보"] < min(vocab[u"보이"], vocab[u"##던"], vocab[u"##데"], vocab[u"##이던"])
    assert tokenizer.tokenize(u"보이던데") == [u"보", u"##이던", u"##데"]
    # forward 뻔 ##했으 ##니 vs backward 뻔 ##했 ##으니: forward's "##니" beats every backward
    # piece.
    assert vocab[u"##니"] < min(vocab[u"뻔"], vocab[u"##했"], vocab[u"##으니"])
    assert tokenizer.tokenize(u"뻔했으니") == [u"뻔", u"##했으", u"##니"]


def test_subchar_decomposes_before_tokenizing(tmp_path, implementation):
    assert to_subchar(u"한ﬁ①") == u"\u1112\u1161\u11abfi1"
    jamo = [u"\u1112\u1161\u11ab", u"fi", "1", u"##\u1100"]
    tokenizer = bidirectional(tmp_path, jamo, subchar=True)
    assert tokenizer.tokenize(u"한 ﬁ ①") == [u"\u1112\u1161\u11ab", "fi", "1"]
    assert bidirectional(tmp_path, jamo).tokenize(u"한") == ["[UNK]"]  # no subchar: syllable


def test_subchar_on_the_subchar_vocabulary(krbert_dir, implementation):
    tokenizer = tokenization.FullTokenizer(os.path.join(krbert_dir, "vocab_subchar_12367.txt"),
                                           do_lower_case=False, tokenizer="bidirectional",
                                           subchar=True)
    # KR-BERT's README writes these jamo pieces with syllables and compatibility jamo.
    final_b, final_s = u"##\u11b8", u"##\u11ba"  # final consonants ㅂ and ㅅ
    for word, pieces in [(u"춥다", [u"추", final_b + to_subchar(u"다")]),
                         (u"뱃사람", [u"배", final_s, u"##" + to_subchar(u"사람")]),
                         (u"마이크", [u"마이크"]), (u"냉장고", [u"냉장고"])]:
        assert tokenizer.tokenize(word) == [to_subchar(piece) for piece in pieces]


# ---------------------------------------------------------------------------------------------
# The pure-Python fast path against the plain per-character implementation.

def random_texts(count, seed):
    """Random strings over all of Unicode, weighted towards the characters the rules treat."""
    rng = random.Random(seed)
    blocks = [(0x20, 0x7F), (0x80, 0x3000), (0x3000, 0xA000), (0xAC00, 0xD7A4),
              (0xF900, 0xFB00), (0xFE00, 0x10000), (0x10000, 0x30000), (0xE0000, 0xE0080),
              (0, 0x110000)]
    tricky = list(u"\x00\ufffd\t\n\r \u00a0\u2028\u200b\u200d\x0b\x1c\x85\u0130\u03a3\u037e"
                  u"\u1fef#.,!ㅋ한영화\u0301\ufe0f😀")
    texts = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randint(0, 24)):
            if rng.random() < 0.3:
                chars.append(rng.choice(tricky))
            else:
                low, high = rng.choice(blocks)
                chars.append(chr(rng.randrange(low, high)))
        texts.append(u"".join(chars))
    return texts


CONFIGS = [("shipped", "wordpiece", False, False),
           ("shipped", "wordpiece", False, True),
           ("shipped", "bidirectional", False, False),
           ("vocab_krmedium_20000.txt", "wordpiece", False, False),
           ("vocab_krmedium_20000.txt", "wordpiece", False, True),
           ("vocab_char_16424.txt", "bidirectional", False, False),
           ("vocab_subchar_12367.txt", "bidirectional", True, False),
           ("vocab_subchar_12367.txt", "bidirectional", True, True)]


@pytest.fixture(scope="module")
def equivalence_texts(data_dir):
    docs = nsmc_documents(data_dir)
    return random.Random(0).sample(docs, min(2500, len(docs))) + random_texts(2500, seed=1)


@pytest.mark.parametrize("vocab,mode,subchar,lower", CONFIGS)
def test_fast_path_equals_reference(request, equivalence_texts, vocab, mode, subchar, lower,
                                    pure_python):
    tokenizer = tokenization.FullTokenizer(vocab_path(request, vocab), do_lower_case=lower,
                                           tokenizer=mode, subchar=subchar, check_case=False)
    assert tokenizer.implementation == fast_tokenization.PYTHON_IMPLEMENTATION
    mismatches = [text for text in equivalence_texts
                  if tokenizer.tokenize(text) != tokenizer.reference_tokenize(text)]
    assert not mismatches, [(t, tokenizer.tokenize(t), tokenizer.reference_tokenize(t))
                            for t in mismatches[:3]]


def test_equivalence_check_catches_a_broken_fast_path(equivalence_texts, pure_python):
    tokenizer = tokenization.FullTokenizer(SHIPPED_VOCAB, do_lower_case=False)
    tokenizer._words = lambda text: text.split()  # forgets punctuation and control characters
    assert any(tokenizer.tokenize(text) != tokenizer.reference_tokenize(text)
               for text in equivalence_texts)
