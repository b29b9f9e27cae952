# -*- coding: utf-8 -*-
"""Tests for build_vocab.py and krbert/vocab/builder.py.

Small vocabularies are learned from a synthetic Korean corpus written here; the expected
properties are checked against tokenization.FullTokenizer run on the corpus, not against
the builder's own counts. The real-data test checks the shipped vocab/vocab_20000.txt
against the published KR-BERT-MEDIUM vocabulary on NSMC's test split.
"""

import collections
import io
import json
import os
import random
import subprocess
import sys

import pytest

import tokenization
from krbert.classifier import tasks
from krbert.cli import InputError
from krbert.vocab import builder as vocab_builder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SHIPPED_VOCAB = os.path.join(ROOT, "vocab", "vocab_20000.txt")
PUBLISHED_VOCAB = "vocab_krmedium_20000.txt"

STEMS = [u"영화", u"배우", u"연기", u"감독", u"음악", u"장면", u"이야기", u"주인공",
         u"결말", u"시간", u"사람", u"최고", u"진짜", u"정말", u"너무", u"재미", u"ㅋㅋㅋ",
         u"CGV", u"10점"]
ENDINGS = [u"", u"", u"가", u"는", u"를", u"도", u"에서", u"이다", u"였다", u"들", u"의",
           u"랑"]
PUNCT = [u".", u"!", u"?", u"...", u"~", u"", u""]
SMALL = dict(vocab_size=240, min_word_count=1, num_threads=1, progress=False)


def make_corpus(n_lines, seed=0):
    """Review-like lines: stems with particles, punctuation; frequencies are skewed."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [STEMS[min(int(rng.expovariate(0.25)), len(STEMS) - 1)] + rng.choice(ENDINGS)
                 for _ in range(rng.randint(2, 7))]
        lines.append(u" ".join(words) + rng.choice(PUNCT))
        if rng.random() < 0.1:
            lines.append(u"")  # blank lines separate documents
    return lines


def write_lines(path, lines):
    with io.open(str(path), "w", encoding="utf-8", newline="\n") as f:
        f.write(u"".join(line + u"\n" for line in lines))
    return str(path)


def read_vocab(path):
    with io.open(path, encoding="utf-8") as f:
        return f.read().split(u"\n")[:-1]


def body_text(token):
    return token[2:] if token.startswith("##") else token


def fulltokenizer_counts(vocab_file, lines, subchar=False):
    """Token counts of the lines under FullTokenizer with the vocabulary (the oracle)."""
    full = tokenization.FullTokenizer(vocab_file, do_lower_case=False, subchar=subchar)
    counts = collections.Counter()
    for line in lines:
        counts.update(full.tokenize(line))
    return counts


def assert_wordpiece_form(tokens, size):
    """Specials first, exact size, unique, no whitespace, every single character in both forms."""
    assert tokens[:5] == SPECIALS
    assert len(tokens) == size
    assert len(set(tokens)) == size
    assert not [t for t in tokens if not t or any(c.isspace() for c in t)]
    singles = set(t for t in tokens[5:] if len(t) == 1)
    continued = set(t[2:] for t in tokens[5:] if t.startswith("##") and len(t) == 3)
    assert singles and singles == continued
    return singles


def assert_frequency_order(tokens, counts):
    """Tokens after the specials sorted by count (descending), ties by code point."""
    keys = [(-counts.get(t, 0), t) for t in tokens[5:]]
    bad = [(a, b) for a, b in zip(keys, keys[1:]) if a > b]
    assert not bad, bad[:5]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 240-token vocabulary of the synthetic corpus: (vocab file, tokens, lines, stats)."""
    folder = tmp_path_factory.mktemp("small")
    lines = make_corpus(1500)
    corpus = write_lines(folder / "corpus.txt", lines)
    tokens, stats = vocab_builder.build_vocab([corpus], **SMALL)
    vocab_file = str(folder / "vocab.txt")
    vocab_builder.write_vocab(tokens, vocab_file)
    return vocab_file, tokens, [line for line in lines if line], stats


# ----------------------------------------------------------------------------- conversion


def test_sentencepiece_pieces_become_wordpiece_tokens():
    pieces = [u"▁영화", u"화가", u"▁", u"▁가", u"가", u"▁영화", u"에서", u"▁a", u"▁ab",
              u"x", u"10", u"▁10", u"영화", u"다가", u"xy"]
    starts = {u"영화", u"가", u"ab", u"10", u"xy"}  # "10" and "xy" after a lone "▁"
    insides = {u"화가", u"에서", u"가", u"영화", u"xy"}  # no "다가": an unused merge
    tokens = vocab_builder.multi_char_tokens(pieces, starts, insides, u"영화가에서ab10xy")
    assert tokens == [u"영화", u"##영화", u"##화가", u"##에서", u"ab", u"10", u"xy", u"##xy"]


def test_vocabulary_has_wordpiece_form(small):
    vocab_file, tokens, lines, stats = small
    assert read_vocab(vocab_file) == tokens
    singles = assert_wordpiece_form(tokens, 240)
    # Every character of the corpus is kept (it has far fewer than --max_alphabet).
    words = vocab_builder.count_words(lines, progress=False)
    assert singles == set(u"".join(words))
    assert stats["alphabet_size"] == len(singles)
    # Longer pieces: bare ones start a corpus word, ## ones continue one.
    multi = [t for t in tokens[5:] if len(body_text(t)) > 1]
    assert len(multi) == 240 - 5 - 2 * len(singles) > 50
    for token in multi:
        if token.startswith("##"):
            assert any(token[2:] in word[1:] for word in words), token
        else:
            assert any(word.startswith(token) for word in words), token


def test_tokens_are_ordered_by_wordpiece_frequency(small):
    vocab_file, tokens, lines, _ = small
    counts = fulltokenizer_counts(vocab_file, lines)
    assert "[UNK]" not in counts
    assert_frequency_order(tokens, counts)
    # The order is not the trivial one: frequent pieces come before rare characters.
    assert tokens[5] in (u".", u"영화") and counts[tokens[5]] >= counts[tokens[-1]] + 100


def test_learned_pieces_shorten_the_text(small):
    vocab_file, _, lines, _ = small
    chars_only = sum(len(w) for line in lines
                     for w in tokenization.BasicTokenizer(False).tokenize(line))
    n_tokens = sum(fulltokenizer_counts(vocab_file, lines).values())
    assert n_tokens < 0.6 * chars_only


# ----------------------------------------------------------------------------- options


def test_subchar_learns_jamo(tmp_path):
    lines = make_corpus(1500)
    corpus = write_lines(tmp_path / "corpus.txt", lines)
    tokens, _ = vocab_builder.build_vocab([corpus], subchar=True, **SMALL)
    vocab_file = str(tmp_path / "vocab.txt")
    vocab_builder.write_vocab(tokens, vocab_file)
    singles = assert_wordpiece_form(tokens, 240)
    assert not [t for t in tokens if any(u"\uac00" <= c <= u"\ud7a3" for c in t)]
    assert set(u"\u110b\u1167\u11bc\u1112\u116a") <= singles  # the jamo of 영화
    counts = fulltokenizer_counts(vocab_file, [line for line in lines if line], subchar=True)
    assert "[UNK]" not in counts
    assert_frequency_order(tokens, counts)
    # The learned pieces join jamo back into syllable-sized (and longer) units.
    assert u"\u110b\u1167\u11bc\u1112\u116a" in tokens  # 영화 decomposed


def test_max_alphabet_keeps_the_most_frequent_characters(tmp_path):
    rng = random.Random(1)
    rare = [u"뷁", u"햏", u"궯", u"쉙", u"웱"]
    lines = make_corpus(1500)
    lines += [u"%s%s 영화" % (rng.choice(rare), rng.choice(STEMS)) for _ in range(30)]
    corpus = write_lines(tmp_path / "corpus.txt", lines)
    words = vocab_builder.count_words([line for line in lines if line], progress=False)
    chars = collections.Counter()
    for word, count in words.items():
        for char in word:
            chars[char] += count
    ranked = sorted(chars, key=lambda c: (-chars[c], c))
    keep = len(ranked) - 8  # drops the five rare syllables and three more
    tokens, stats = vocab_builder.build_vocab([corpus], max_alphabet=keep, **SMALL)
    singles = assert_wordpiece_form(tokens, 240)
    assert stats["alphabet_size"] == keep
    assert singles == set(ranked[:keep])
    dropped = set(ranked[keep:])
    assert set(rare) <= dropped
    assert not [t for t in tokens[5:] if set(body_text(t)) & dropped]
    vocab_file = str(tmp_path / "vocab.txt")
    vocab_builder.write_vocab(tokens, vocab_file)
    full = tokenization.FullTokenizer(vocab_file, do_lower_case=False)
    assert full.tokenize(u"뷁영화 영화") == [u"[UNK]", u"영화"]


def test_sample_lines_is_a_deterministic_uniform_reservoir():
    lines = [u"line %d" % i for i in range(50)]
    sample, seen = vocab_builder.sample_lines(iter(lines), 10, seed=7)
    assert seen == 50 and len(sample) == 10 and len(set(sample)) == 10
    assert sample == sorted(sample, key=lines.index)  # input order kept
    assert vocab_builder.sample_lines(iter(lines), 10, seed=7)[0] == sample
    assert vocab_builder.sample_lines(iter(lines), 10, seed=8)[0] != sample
    assert vocab_builder.sample_lines(iter(lines), 0, seed=7) == (lines, 50)
    assert vocab_builder.sample_lines(iter(lines), 80, seed=7) == (lines, 50)
    hits = collections.Counter()
    for seed in range(2000):
        hits.update(vocab_builder.sample_lines(iter(lines), 10, seed)[0])
    # Each line is kept with probability 1/5: 400 of 2000 draws, sd 17.9.
    assert all(abs(hits[line] - 400) < 90 for line in lines), sorted(hits.values())


def test_input_sentence_size_trains_on_the_sample_only(tmp_path):
    base = [line for line in make_corpus(400) if line]
    # Line i carries its own CJK character, a word of its own for BasicTokenizer.
    lines = [u"%s %s" % (line, chr(0x4E00 + i)) for i, line in enumerate(base)]
    corpus = write_lines(tmp_path / "corpus.txt", lines)
    sample, _ = vocab_builder.sample_lines(iter(lines), 60, seed=3)
    n_chars = len(set(u"".join(vocab_builder.count_words(sample, progress=False))))
    size = 5 + 2 * n_chars + 30
    tokens, stats = vocab_builder.build_vocab([corpus], input_sentence_size=60, seed=3,
                                              **dict(SMALL, vocab_size=size))
    assert (stats["input_lines"], stats["sampled_lines"]) == (len(lines), 60)
    markers = set(t for t in tokens if len(t) == 1 and u"\u4e00" <= t <= u"\u9fff")
    assert markers == set(line[-1] for line in sample)
    other, _ = vocab_builder.build_vocab([corpus], input_sentence_size=60, seed=4,
                                         **dict(SMALL, vocab_size=size))
    assert other != tokens


def test_eval_file_column_is_unquoted_like_nsmc(tmp_path):
    path = write_lines(tmp_path / "eval.tsv", [u"id\tdocument\tlabel", u"1\t굳 ㅋ\t1",
                                               u'2\t"""최고"" 영화"\t0', u"3\t\t0"])
    assert vocab_builder.read_eval_texts(path, "document") == [u"굳 ㅋ", u'"최고" 영화', u""]
    with pytest.raises(InputError, match=r"eval.tsv:1: the header line must name the columns "
                                         r"text"):
        vocab_builder.read_eval_texts(path, "text")


def test_eval_file_lines_keep_every_byte_or_name_the_line_that_is_not_utf8(tmp_path):
    path = tmp_path / "eval.txt"
    path.write_bytes(u"굳 ㅋ\r\n최고 영화\n\n".encode("utf-8"))
    assert vocab_builder.read_eval_texts(str(path)) == [u"굳 ㅋ", u"최고 영화", u""]
    path.write_bytes(u"굳 ㅋ\n최고".encode("utf-8") + b"\xff" + u" 영화\n".encode("utf-8"))
    with pytest.raises(InputError) as error:
        vocab_builder.read_eval_texts(str(path))
    assert str(error.value) == ("%s:2: not valid UTF-8 (byte 7 of the line); save the file as "
                                "UTF-8" % path)


def test_eval_file_sees_the_text_the_classifier_sees(tmp_path):
    """An NSMC review quoted twice (test.tsv, id 9037756) loses both layers of quoting."""
    review = (u'"""스토리, 연출, 연기, 비주얼 등 영화의 기본 조차 안된 영화에 무슨 평을 해. 이런 '
              u'영화 찍고도 김문옥 감독은 """"내가 영화 경력이 몇OO인데 조무래기들이 내 영화를 '
              u'평론해?"""" 같은 마인드에 빠져있겠지?"""')
    write_lines(tmp_path / "test.tsv", [u"id\tdocument\tlabel", u"9037756\t%s\t0" % review])
    texts = vocab_builder.read_eval_texts(str(tmp_path / "test.tsv"), "document")
    split = tasks.get_processor("nsmc").read_split(str(tmp_path), "test")
    assert texts == [e.text for e in split.examples]
    assert texts[0].startswith(u"스토리") and u' "내가 영화 경력이' in texts[0]


def test_eval_file_matches_the_classifier_on_real_nsmc(data_dir):
    path = os.path.join(data_dir, "nsmc", "test.tsv")
    split = tasks.get_processor("nsmc").read_split(os.path.dirname(path), "test")
    assert vocab_builder.read_eval_texts(path, "document") == [e.text for e in split.examples]


def test_too_small_corpus_is_an_input_error(tmp_path):
    corpus = write_lines(tmp_path / "corpus.txt", [u"영화 영화가 재미"])
    with pytest.raises(InputError, match="corpus.txt: the text yields only"):
        vocab_builder.build_vocab([corpus], **dict(SMALL, vocab_size=400))


# ----------------------------------------------------------------------------- command line


def run_script(args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "build_vocab.py")] + args,
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_command_line_is_deterministic_and_reports(tmp_path):
    corpus = write_lines(tmp_path / "corpus.txt", make_corpus(1500))
    empty = write_lines(tmp_path / "empty.txt", [u"", u"  ", u""])
    eval_file = write_lines(tmp_path / "eval.txt", make_corpus(200, seed=5))
    common = ["--input_file=%s" % corpus, "--vocab_size=240", "--min_word_count=1",
              "--input_sentence_size=1000"]
    runs = {
        "a": run_script(common + ["--output_file=%s" % (tmp_path / "a" / "vocab.txt"),
                                  "--num_threads=2", "--eval_file=%s" % eval_file],
                        {"PYTHONHASHSEED": "1"}),
        "b": run_script(common + ["--output_file=%s" % (tmp_path / "b.txt"), "--num_threads=1"],
                        {"PYTHONHASHSEED": "2"}),
        "missing": run_script(["--input_file=%s,%s" % (corpus, tmp_path / "none" / "*.txt"),
                               "--output_file=%s" % (tmp_path / "x.txt")]),
        "empty": run_script(["--input_file=%s" % empty, "--output_file=%s" % (tmp_path / "y.txt")]),
        "no_input": run_script(["--output_file=%s" % (tmp_path / "z.txt")]),
    }
    out = {}
    for name, process in runs.items():
        stdout, stderr = process.communicate()
        out[name] = (process.returncode, stdout.decode("utf-8"), stderr.decode("utf-8"))
    for name in "ab":
        assert out[name][0] == 0, out[name][2][-2000:]
    # Other process, hash seed and thread count: the same bytes.
    with open(str(tmp_path / "a" / "vocab.txt"), "rb") as f:
        first = f.read()
    with open(str(tmp_path / "b.txt"), "rb") as f:
        assert f.read() == first
    assert_wordpiece_form(first.decode("utf-8").split(u"\n")[:-1], 240)

    with io.open(str(tmp_path / "a" / "vocab.txt.report.json"), encoding="utf-8") as f:
        report = json.load(f)
    assert "[UNK] rate" in out["a"][1] and "tokens per word" in out["a"][1]
    eval_lines = read_vocab(eval_file)
    counts = fulltokenizer_counts(str(tmp_path / "a" / "vocab.txt"), eval_lines)
    n_words = sum(len(tokenization.BasicTokenizer(False).tokenize(line)) for line in eval_lines)
    ev = report["eval"]
    assert (ev["lines"], ev["tokens"], ev["words"]) == (len(eval_lines), sum(counts.values()),
                                                        n_words)
    assert ev["unk_rate"] == 0.0
    assert ev["tokens_per_line"] == pytest.approx(sum(counts.values()) / float(len(eval_lines)))
    assert ev["tokens_per_word"] == pytest.approx(sum(counts.values()) / float(n_words))
    assert report["sampled_lines"] == 1000 < report["input_lines"]

    expected = {"missing": "none/*.txt' matches no file",
                "empty": "empty.txt: no text",
                "no_input": "--input_file is missing"}
    for name, text in expected.items():
        code, _, stderr = out[name]
        lines = stderr.strip().splitlines()
        assert code == 1 and len(lines) == 1, stderr[-2000:]
        assert lines[0].startswith("error: ") and text in lines[0], lines[0]


# ----------------------------------------------------------------------------- real data


def test_shipped_vocab_beats_published_on_nsmc(full_data_dir, krbert_dir):
    """The shipped 20,000-token vocabulary has an [UNK] rate and tokens per document no
    higher than the published KR-BERT-MEDIUM vocabulary on NSMC's 50,000 test reviews."""
    tokens = read_vocab(SHIPPED_VOCAB)
    assert_wordpiece_form(tokens, 20000)
    docs = vocab_builder.read_eval_texts(os.path.join(full_data_dir, "nsmc", "test.tsv"),
                                         "document")
    assert len(docs) == 50000
    ours = vocab_builder.evaluate(SHIPPED_VOCAB, docs, progress=False)
    published = vocab_builder.evaluate(os.path.join(krbert_dir, PUBLISHED_VOCAB), docs,
                                       progress=False)
    assert ours["words"] == published["words"]
    assert ours["unk_rate"] <= published["unk_rate"], (ours, published)
    assert ours["tokens_per_line"] <= published["tokens_per_line"], (ours, published)
