# -*- coding: utf-8 -*-
"""Tests for the C tokenizer (csrc/fast_tokenizer.c, glue in krbert/tokenizers/fast.py).

The C path must give, token for token, what the plain per-character reference path
(FullTokenizer.reference_tokenize) gives: on hand-made tricky texts, random strings, random
small vocabularies and every NSMC test review, with the shipped vocabulary and the three
published KR-BERT vocabularies (when DATA_DIR holds them), for BERT WordPiece, KR-BERT's
bidirectional WordPiece and bidirectional on sub-characters.

The extension must be built (scripts/setup.sh builds it; scripts/test.sh runs setup.sh):
these tests fail, they do not skip, when it is missing.
"""

import io
import random

import pytest
from test_tokenization import SHIPPED_VOCAB, SPECIALS, nsmc_documents, vocab_path, write_vocab

import tokenization
from krbert.tokenizers import fast as fast_tokenization

NOT_BUILT = ("the C tokenizer _fast_tokenizer is not built for this Python (or is stale); run "
             "scripts/setup.sh or 'python setup.py build_ext --inplace'")
MODES = [("wordpiece", False), ("bidirectional", False), ("bidirectional", True)]
REAL_VOCABS = [("shipped", "wordpiece", False), ("shipped", "bidirectional", False),
               ("vocab_krmedium_20000.txt", "wordpiece", False),
               ("vocab_char_16424.txt", "bidirectional", False),
               ("vocab_subchar_12367.txt", "bidirectional", True)]
HAND_TOKENS = [u"영화", u"영", u"##화", u"##가", u"##화가", u"재밌", u"##다", u"ㅋㅋ", u"##ㅋ",
               u"굿", "!", ".", ",", "a", "##a", "ab", "##b", "##bc", "abc", u"中", u"😀",
               u"##😀", u"\u1112\u1161\u11ab", u"\u1112", u"##\u1161", u"##\u11ab", "fi", "1",
               "##1", u"한", u"«", u"\U00010100", "#", "##", "[UNK]x"]
TRICKY_TEXTS = [
    u"", u" ", u"\t\n\r \u3000\u00a0\u2028\u2029", u"\x00", u"\x00\x00 \ufffd", u"a\x00b",
    u"\ufffd", u"영\ufffd화", u"a\tb\nc\rd", u"a\x0bb\x1cc\x85d\x7fe",
    u"a\u200bb\u200dc\ufeffd\u180ee\u061cf", u"a\u2028b\u2029c", u"a\U000e0001b\U0001d173c",
    u"中文漢字", u"ab中cd", u"\U00020000x\U0002a6df\U0002fa1f", u"\uf900\ufaff\u4dc0\u3400",
    u"hi,there!!", u"«x» ¿y? a·b…“c”", u"a©b€c√d", u"$5^`~+=<>|#_", u"〔괄호〕「인용」、。",
    u"！？～", u"a\U00010100b", u"##abc", u"[UNK]", u"[UNK]x", u"좋아요😀👍 굿", u"👨\u200d👩",
    u"❤\ufe0f", u"😀" * 3, u"😀😀 ##😀", u"ㅋㅋㅋㅋ", u"ㅋㅋ.ㅎㅎ", u"ㅠㅠ 영화가 재밌다!! ㅋㅋㅋ",
    u"a" * 200, u"a" * 201, u"ㅋ" * 200, u"ㅋ" * 201, u"😀" * 200, u"😀" * 201,
    u"a" * 199 + u"\x00" + u"a", u"a" * 200 + u"\x00" + u"a", u"a" * 100 + u"\u200b" * 300,
    u"영화" * 100, u"영화" * 100 + u"가", u"x " + u"a" * 201 + u" abc",
    u"\u1100\u1161\u11a8", u"한글 English 日本語 русский العربية", u"ﬁ①㈜ ﬁ1 ①1",
    u"\ue000\uf8ff", u"\ud800x\udfff", u"\U0010ffff", u"abcabc ababc bcbc", u"abc.abc,abc",
    u"한 ﬁ ① 한한", u"\u0130 \u03a3 \u037e \u1fef", u"a\u0301 \u0301",
]


@pytest.fixture(autouse=True)
def default_path(monkeypatch):
    """Every test here starts without KRBERT_PURE_PYTHON, so FullTokenizer picks C."""
    monkeypatch.delenv(fast_tokenization.PURE_PYTHON_ENV, raising=False)


def built_extension():
    """The _fast_tokenizer module; fails the test when it is not built."""
    module = fast_tokenization.extension()
    assert module is not None, NOT_BUILT
    return module


def c_full_tokenizer(vocab_file, mode="wordpiece", subchar=False, required_tokens=("[UNK]",)):
    """A cased FullTokenizer that must run the C path."""
    built_extension()
    tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=False, tokenizer=mode,
                                           subchar=subchar, required_tokens=required_tokens)
    assert tokenizer.implementation == fast_tokenization.C_IMPLEMENTATION
    return tokenizer


def mismatches(tokenizer, texts):
    """(text, C tokens, reference tokens) of the texts the two paths disagree on."""
    found = []
    for text in texts:
        tokens, expected = tokenizer.tokenize(text), tokenizer.reference_tokenize(text)
        if tokens != expected:
            found.append((text, tokens, expected))
    return found


def random_documents(count, seed):
    """Random texts mixing Korean, ASCII, whitespace, control, CJK, emoji and long words."""
    rng = random.Random(seed)
    pools = [u"가나다라마바사영화재밌다굿한글", u"ㅋㅎㅠㅜㄱㄴ", u"abcxyzABC019",
             u" \t\n\r\u3000\u00a0",
             u"!?.,#[]«»…“”、。！", u"\x00\ufffd\x0b\x1c\x85\u200b\u200d\ufeff\U000e0001",
             u"中文漢字\u3400\uf900\U00020000", u"😀👍❤\ufe0f\U00010100\U0010ffff",
             u"\u1100\u1161\u11a8ﬁ①㈜\u0301\ud800", u"".join(map(chr, range(0x80, 0x3000, 97)))]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 12)):
            if rng.random() < 0.03:
                parts.append(rng.choice(u"aㅋ영😀") * rng.randint(195, 205))
            else:
                pool = rng.choice(pools)
                parts.append(u"".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        texts.append(u"".join(parts))
    return texts


# ---------------------------------------------------------------------------------------------
# The extension and when it is used.

def test_extension_is_built():
    assert built_extension().API_VERSION == fast_tokenization.API_VERSION


def test_cased_text_uses_c_and_lower_casing_python(tmp_path):
    vocab = write_vocab(tmp_path, SPECIALS + HAND_TOKENS)
    assert c_full_tokenizer(vocab).implementation == fast_tokenization.C_IMPLEMENTATION
    lower = tokenization.FullTokenizer(vocab, do_lower_case=True, check_case=False)
    assert lower.implementation == fast_tokenization.PYTHON_IMPLEMENTATION


@pytest.mark.parametrize("value,implementation", [
    ("1", fast_tokenization.PYTHON_IMPLEMENTATION),
    ("yes", fast_tokenization.PYTHON_IMPLEMENTATION),
    ("0", fast_tokenization.C_IMPLEMENTATION), ("", fast_tokenization.C_IMPLEMENTATION)])
def test_environment_variable_forces_pure_python(tmp_path, monkeypatch, value, implementation):
    monkeypatch.setenv(fast_tokenization.PURE_PYTHON_ENV, value)
    tokenizer = tokenization.FullTokenizer(write_vocab(tmp_path, SPECIALS + HAND_TOKENS),
                                           do_lower_case=False)
    assert tokenizer.implementation == implementation
    assert tokenizer.tokenize(u"영화가 ㅋㅋㅋ!") == [u"영화", u"##가", u"ㅋㅋ", u"##ㅋ", "!"]


@pytest.mark.parametrize("breakage", ["missing", "other API_VERSION"])
def test_falls_back_to_python_without_the_extension(tmp_path, monkeypatch, breakage):
    vocab = write_vocab(tmp_path, SPECIALS + HAND_TOKENS)
    expected = [c_full_tokenizer(vocab).tokenize(text) for text in TRICKY_TEXTS]
    if breakage == "missing":
        monkeypatch.setattr(fast_tokenization, "_fast_tokenizer", None)
    else:
        monkeypatch.setattr(fast_tokenization, "API_VERSION", -1)
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
    assert tokenizer.implementation == fast_tokenization.PYTHON_IMPLEMENTATION
    assert [tokenizer.tokenize(text) for text in TRICKY_TEXTS] == expected
    with pytest.raises(RuntimeError, match="setup.py build_ext --inplace"):
        fast_tokenization.c_tokenizer(tokenizer.wordpiece_tokenizer, False)


# ---------------------------------------------------------------------------------------------
# Same tokens as the reference path.

@pytest.mark.parametrize("mode,subchar", MODES)
def test_tricky_texts_with_a_hand_made_vocabulary(tmp_path, mode, subchar):
    tokenizer = c_full_tokenizer(write_vocab(tmp_path, SPECIALS + HAND_TOKENS), mode, subchar)
    assert not mismatches(tokenizer, TRICKY_TEXTS)
    assert not mismatches(tokenizer, random_documents(2000, seed=3))


def test_hand_made_expectations(tmp_path):
    vocab = write_vocab(tmp_path, SPECIALS + HAND_TOKENS)
    wordpiece, bidirectional = c_full_tokenizer(vocab), c_full_tokenizer(vocab, "bidirectional")
    subchar = c_full_tokenizer(vocab, "bidirectional", subchar=True)
    for tokenizer in (wordpiece, bidirectional, subchar):
        assert tokenizer.tokenize(u"") == [] and tokenizer.tokenize(u" \t\x00\n ") == []
        assert tokenizer.tokenize(u"a\x00\u200bb\ufffdc") == ["abc"]
        assert tokenizer.tokenize(u"a" * 200) == ["a"] + ["##a"] * 199
        assert tokenizer.tokenize(u"a" * 201) == ["[UNK]"]
        assert tokenizer.tokenize(u"a" * 200 + u"\x00") == ["a"] + ["##a"] * 199
        assert tokenizer.tokenize(u"中中😀😀") == [u"中", u"中", u"😀", u"##😀"]
        assert tokenizer.tokenize(u"«\U00010100##") == [u"«", u"\U00010100", "#", "#"]
        assert tokenizer.tokenize(u"[UNK]x") == ["[UNK]"] * 4  # "[" "UNK" "]" "x"
    assert wordpiece.tokenize(u"abc 영화가 굿굿") == ["abc", u"영화", u"##가", "[UNK]"]
    assert wordpiece.tokenize(u"abbc abcb") == ["ab", "##bc", "abc", "##b"]
    assert wordpiece.tokenize(u"한 ﬁ") == [u"한", "[UNK]"]
    assert subchar.tokenize(u"한 ﬁ①") == [u"\u1112\u1161\u11ab", "fi", "##1"]


@pytest.mark.parametrize("mode,subchar", MODES)
def test_every_bmp_character_and_a_sample_beyond(tmp_path, mode, subchar):
    tokenizer = c_full_tokenizer(write_vocab(tmp_path, SPECIALS + HAND_TOKENS), mode, subchar)
    codepoints = list(range(0x10000)) + list(range(0x10000, 0x110000, 61)) + [
        0x1F600, 0x20000, 0x2A6DF, 0x2A700, 0x2B81F, 0x2B820, 0x2CEAF, 0x2CEB0, 0x2F800,
        0x2FA1F, 0x2FA20, 0xE0001, 0xE0020, 0xE0100, 0x10FFFF]
    texts = [u" ".join(u"a%sb" % chr(cp) for cp in codepoints[start:start + 256])
             for start in range(0, len(codepoints), 256)]  # spaces keep the "a?b" apart
    assert not mismatches(tokenizer, texts)


def test_tokens_are_the_vocabulary_strings(tmp_path):
    tokenizer = c_full_tokenizer(write_vocab(tmp_path, SPECIALS + HAND_TOKENS))
    vocab_ids = set(map(id, tokenizer.vocab))
    tokens = tokenizer.tokenize(u"영화가 abc 😀😀 ! 없음")
    assert tokens == [u"영화", u"##가", "abc", u"😀", u"##😀", "!", "[UNK]"]
    assert all(id(token) in vocab_ids for token in tokens)


def random_vocab_lines(rng):
    """A small vocabulary over a few characters: specials shuffled, [UNK] missing or ranked
    first, sometimes the bare continuation "##"."""
    alphabet = u"ab가😀"
    texts = set()
    for _ in range(rng.randint(1, 25)):
        text = u"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
        texts.add((u"##" if rng.random() < 0.6 else u"") + text)
    lines = sorted(texts)
    rng.shuffle(lines)
    specials = list(SPECIALS)
    if rng.random() < 0.2:
        specials.remove("[UNK]")
    lines = specials + lines
    if rng.random() < 0.3:
        rng.shuffle(lines)  # [UNK] and real pieces among the first five ids
    return lines + ([u"##"] if rng.random() < 0.2 else [])


@pytest.mark.parametrize("mode,subchar", MODES)
def test_random_small_vocabularies(tmp_path, mode, subchar):
    rng = random.Random(MODES.index((mode, subchar)))
    words = [u"".join(rng.choice(u"ab가😀 ,") for _ in range(rng.randint(0, 14)))
             for _ in range(60)]
    for round_ in range(150):
        vocab = write_vocab(tmp_path, random_vocab_lines(rng), "v%d.txt" % round_)
        tokenizer = c_full_tokenizer(vocab, mode, subchar, required_tokens=())
        found = mismatches(tokenizer, words)
        assert not found, (io.open(vocab, encoding="utf-8").read().split("\n"), found[:3])


@pytest.mark.parametrize("vocab,mode,subchar", REAL_VOCABS)
def test_real_vocabularies_on_tricky_and_random_texts(request, vocab, mode, subchar):
    tokenizer = c_full_tokenizer(vocab_path(request, vocab), mode, subchar)
    assert not mismatches(tokenizer, TRICKY_TEXTS)
    found = mismatches(tokenizer, random_documents(3000, seed=7))
    assert not found, found[:3]


@pytest.mark.parametrize("vocab,mode,subchar", REAL_VOCABS)
def test_real_vocabularies_on_every_nsmc_test_review(request, nsmc_test_docs, is_full_data,
                                                     vocab, mode, subchar):
    tokenizer = c_full_tokenizer(vocab_path(request, vocab), mode, subchar)
    found = mismatches(tokenizer, nsmc_test_docs)
    assert not found, (len(found), found[:3])
    assert len(nsmc_test_docs) == 50000 or not is_full_data


@pytest.fixture(scope="module")
def nsmc_test_docs(data_dir):
    return nsmc_documents(data_dir)


# ---------------------------------------------------------------------------------------------
# The extension's own checks.

def c_tokenizer(vocab=None, bmp=None, classify=fast_tokenization.char_class, **kwargs):
    """A _fast_tokenizer.Tokenizer with a tiny vocabulary unless told otherwise."""
    settings = dict(vocab={"[UNK]": 1, "a": 5, "##a": 6} if vocab is None else vocab,
                    unk_token="[UNK]", max_chars=200, bidirectional=False, special_ids=5,
                    bmp_classes=fast_tokenization.bmp_classes() if bmp is None else bmp,
                    classify=classify)
    settings.update(kwargs)
    return built_extension().Tokenizer(**settings)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="bmp_classes has 10 bytes; want 65536"):
        c_tokenizer(bmp=bytes(10))
    with pytest.raises(ValueError, match=r"bmp_classes\[0\] is 9"):
        c_tokenizer(bmp=b"\x09" * 0x10000)
    with pytest.raises(TypeError, match="vocab must map str tokens to int ids"):
        c_tokenizer(vocab={"a": "1"})
    with pytest.raises(ValueError, match="max_chars must be >= 0"):
        c_tokenizer(max_chars=-1)
    with pytest.raises(TypeError, match="classify must be callable"):
        c_tokenizer(classify=3)
    with pytest.raises(TypeError, match="takes a str, not bytes"):
        c_tokenizer().tokenize(b"a")


def test_classify_errors_reach_the_caller():
    def failing(cp):
        raise KeyError(cp)
    tokenizer = c_tokenizer(classify=failing)
    with pytest.raises(KeyError):
        tokenizer.tokenize(u"a \U0001f600")
    assert tokenizer.tokenize(u"aa a") == ["a", "##a", "a"]  # still usable
    with pytest.raises(ValueError, match=r"classify\(128512\) returned 7"):
        c_tokenizer(classify=lambda cp: 7).tokenize(u"\U0001f600")


def test_classify_may_call_tokenize_again():
    calls = []

    def classify(cp):
        calls.append(tokenizer.tokenize(u"aa ,a"))  # a nested call, mid-tokenize
        return fast_tokenization.char_class(cp)
    tokenizer = c_tokenizer(classify=classify)
    assert tokenizer.tokenize(u"a 😀 aaa") == ["a", "[UNK]", "a", "##a", "##a"]
    assert tokenizer.tokenize(u"😀😀") == ["[UNK]"]
    assert calls == [["a", "##a", "[UNK]", "a"]]  # one question per code point


def test_zero_max_chars_makes_every_word_unknown():
    assert c_tokenizer(max_chars=0).tokenize(u"a a,") == ["[UNK]", "[UNK]", "[UNK]"]


def test_the_comparison_catches_wrong_character_classes():
    tokenizer = c_full_tokenizer(SHIPPED_VOCAB)
    tokenizer._fast = c_tokenizer(dict(tokenizer.vocab), bmp=bytes(0x10000),
                                  classify=lambda cp: 0).tokenize  # no spaces, no punctuation
    assert len(mismatches(tokenizer, TRICKY_TEXTS)) > len(TRICKY_TEXTS) // 2
