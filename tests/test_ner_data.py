"""KLUE-NER files (krbert/tagging/klue.py) and the tagger's token alignment
(krbert/tagging/features.py): reading, bad lines, the carved split, writing, and the
sub-token labels projected back to characters."""

import os

import pytest

import tokenization
from krbert import cli
from krbert.tagging import features, klue

HEADER = "## 토큰, 레이블 구분자 : \\t\n## 컬럼명 : CHAR\tNE_TAG\n"


def sentence_lines(guid, pairs):
    chars = [c for c, _ in pairs]
    tags = [t for _, t in pairs]
    head = "## %s\t%s\n" % (guid, klue.tagged_text(chars, tags))
    return head + "".join("%s\t%s\n" % p for p in pairs) + "\n"


SEOUL = [("서", "B-LC"), ("울", "I-LC"), ("에", "O"), ("서", "O"), (" ", "O"), ("김", "B-PS"),
         (" ", "I-PS"), ("씨", "I-PS"), ("가", "O")]


def test_reads_sentences_ids_and_tags():
    text = HEADER + sentence_lines("s-1", SEOUL) + sentence_lines("s-2", [("3", "B-QT")])
    ner_file = klue.parse("x.tsv", text)
    assert [s.guid for s in ner_file.sentences] == ["s-1", "s-2"]
    first = ner_file.sentences[0]
    assert "".join(first.chars) == "서울에서 김 씨가"
    assert first.tags == [t for _, t in SEOUL]
    assert first.comments == HEADER.splitlines()
    assert first.line == 4 and ner_file.repaired == 0
    assert klue.tagged_text(first.chars, first.tags) == "<서울:LC>에서 <김 씨:PS>가"


def test_writing_what_was_read_gives_the_same_bytes(tmp_path):
    text = HEADER + sentence_lines("s-1", SEOUL) + sentence_lines("s-2", [("3", "B-QT")])
    sentences = klue.parse("x.tsv", text).sentences
    path = str(tmp_path / "out.tsv")
    klue.write_file(path, sentences, [s.tags for s in sentences])
    with open(path, encoding="utf-8") as f:
        assert f.read() == text


def test_the_sample_file_reads_and_writes_back_unchanged(data_dir, tmp_path):
    path = os.path.join(data_dir, "klue", klue.FILES["dev"])
    ner_file = klue.read_file(path)
    assert len(ner_file.sentences) >= 400 and ner_file.repaired == 0
    out = str(tmp_path / "dev.tsv")
    klue.write_file(out, ner_file.sentences, [s.tags for s in ner_file.sentences])
    with open(out, "rb") as a, open(path, "rb") as b:
        assert a.read() == b.read()


@pytest.mark.parametrize("line, message", [
    ("서 B-LC", "x.tsv:2: no tab in '서 B-LC'"),
    ("서울\tB-LC", "x.tsv:2: '서울' is not one character"),
    ("서\tB-LOC", "x.tsv:2: tag 'B-LOC' is not in KLUE-NER's scheme"),
])
def test_bad_lines_are_refused_with_file_and_line(line, message):
    with pytest.raises(cli.InputError) as error:
        klue.parse("x.tsv", "## s-1\t서\n%s\n\n" % line)
    assert str(error.value).startswith(message)


def test_an_i_tag_without_b_is_read_as_b_and_counted():
    text = sentence_lines("s-1", [("가", "O"), ("서", "I-LC"), ("울", "I-LC"), ("김", "I-PS")])
    ner_file = klue.parse("x.tsv", text)
    assert ner_file.sentences[0].tags == ["O", "B-LC", "I-LC", "B-PS"]
    assert ner_file.repaired == 2


def test_carved_split_when_the_train_file_is_missing(tmp_path):
    lines = "".join(sentence_lines("s-%d" % i, [("가", "O")]) for i in range(10))
    (tmp_path / klue.FILES["dev"]).write_text(lines, encoding="utf-8")
    splits = klue.read_splits(str(tmp_path), ["train", "dev"])
    train, dev = splits["train"][0], splits["dev"][0]
    assert [s.guid for s in train] == ["s-%d" % i for i in range(8)]
    assert [s.guid for s in dev] == ["s-8", "s-9"]
    (tmp_path / klue.FILES["train"]).write_text(sentence_lines("t-0", [("가", "O")]),
                                                encoding="utf-8")
    assert [s.guid for s in klue.read_splits(str(tmp_path), ["dev"])["dev"][0]] == [
        "s-%d" % i for i in range(10)]
    with pytest.raises(cli.InputError, match="holds neither"):
        klue.read_splits(str(tmp_path / "missing"), ["train"])


def test_space_tags_follow_the_entity_around_them():
    chars = list("김 씨 가")
    assert klue.space_tags(chars, ["B-PS", "O", "I-PS", "O", "O"]) == [
        "B-PS", "I-PS", "I-PS", "O", "O"]


# ---------------------------------------------------------------------------------------
# Alignment


@pytest.fixture()
def tokenizer(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "서울", "##에서", "김", "씨",
             "##가", "a", "##b", "(", ")"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return tokenization.FullTokenizer(str(path), do_lower_case=False, check_case=False)


def test_subtokens_take_their_first_character_tag_and_project_back(tokenizer):
    chars = [c for c, _ in SEOUL]
    tags = [t for _, t in SEOUL]
    alignment = features.align(tokenizer, chars)
    assert alignment.tokens == tokenizer.tokenize("".join(chars)) == [
        "서울", "##에서", "김", "씨", "##가"]
    assert alignment.starts == [0, 2, 5, 7, 8]
    assert features.token_labels(alignment, tags) == ["B-LC", "O", "B-PS", "I-PS", "O"]
    # "서울" inside the eojeol "서울에서": both characters come back as the entity
    assert features.project(alignment, chars, ["B-LC", "O", "B-PS", "I-PS", "O"]) == tags
    # a cut sentence: characters past the kept tokens are O
    assert features.project(alignment, chars, ["B-LC", "O"]) == [
        "B-LC", "I-LC", "O", "O", "O", "O", "O", "O", "O"]


def test_unknown_words_and_punctuation_keep_their_characters(tokenizer):
    chars = list("(ab)xyz 씨")
    alignment = features.align(tokenizer, chars)
    assert alignment.tokens == ["(", "a", "##b", ")", "[UNK]", "씨"]
    assert alignment.starts == [0, 1, 2, 3, 4, 8]
    assert alignment.owners == [0, 1, 2, 3, 4, 4, 4, None, 5]
    projected = features.project(alignment, chars, ["O", "B-OG", "I-OG", "O", "B-PS", "O"])
    assert projected == ["O", "B-OG", "I-OG", "O", "B-PS", "I-PS", "I-PS", "O", "O"]


def test_features_hold_cls_labels_sep_and_are_cut(tokenizer):
    sentence = klue.Sentence("s", [c for c, _ in SEOUL], [t for _, t in SEOUL], 1, [])
    _, records, stats = features.build_features(tokenizer, [sentence], max_seq_length=5)
    input_ids, label_ids = records[0]
    assert tokenizer.convert_ids_to_tokens(input_ids) == ["[CLS]", "서울", "##에서", "김",
                                                          "[SEP]"]
    assert [klue.LABELS[i] for i in label_ids] == ["O", "B-LC", "O", "B-PS", "O"]
    assert stats["num_truncated"] == 1


def test_the_benchmark_entry_names_run_ner_flags_and_sample_files(data_dir):
    import json

    from conftest import ROOT
    from krbert.tagging import tasks

    with open(os.path.join(ROOT, "tests", "fixtures", "script_flags.json"),
              encoding="utf-8") as f:
        known = json.load(f)["run_ner"]
    for entry in tasks.BENCHMARKS:
        assert entry["script"] == "run_ner.py" and entry["headline"] in entry["metrics"]
        for flag in entry["flags"]:
            assert flag[2:].split("=")[0] in known, flag
        for name in entry["data_files"]:
            assert os.path.isfile(os.path.join(data_dir, name)), name
