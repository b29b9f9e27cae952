"""The task registry and the readers of the task files."""

import os

import pytest

from krbert import cli
from krbert.classifier import tasks as ct

NSMC_HEADER = "id\tdocument\tlabel\n"
HATE_HEADER = "comments\tcontain_gender_bias\tbias\thate\n"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------------------
# Readers


def test_nsmc_restores_double_quoted_documents_and_keeps_empty_ones(tmp_path):
    # The official files quote a document holding a double quote twice.
    write(tmp_path / "train.tsv", NSMC_HEADER +
          '1\t"""완전 ... """"아빠.아빠."""" ㅋㅎㅎ"""\t1\n'
          "2\t\t0\n"
          "3\t그냥 평범\t0\n"
          '4\t"""""""결혼은 현실"""" 성현아."""\t0\n')
    processor = ct.get_processor("NSMC")
    split = processor.read_split(str(tmp_path), "train")
    texts = [e.text for e in split.examples]
    assert texts == ['완전 ... "아빠.아빠." ㅋㅎㅎ', "", "그냥 평범", '"결혼은 현실" 성현아.']
    assert [e.guid for e in split.examples] == ["1", "2", "3", "4"]
    assert [e.label for e in split.examples] == ["1", "0", "0", "0"]
    assert [e.line for e in split.examples] == [2, 3, 4, 5]
    assert split.has_labels
    assert ct.log_split(processor, split) == 1  # the empty document is counted and kept


def test_nsmc_accepts_the_official_file_names(tmp_path):
    write(tmp_path / "ratings_train.txt", NSMC_HEADER + "1\t좋다\t1\n")
    split = ct.get_processor("nsmc").read_split(str(tmp_path), "train")
    assert split.path.endswith("ratings_train.txt") and len(split.examples) == 1


def test_data_dir_may_be_the_parent_of_the_task_folder(tmp_path):
    write(tmp_path / "nsmc" / "dev.tsv", NSMC_HEADER + "1\t좋다\t1\n")
    split = ct.get_processor("nsmc").read_split(str(tmp_path), "dev")
    assert len(split.examples) == 1


def test_a_row_with_the_wrong_column_count_names_file_line_and_row(tmp_path):
    path = write(tmp_path / "train.tsv", NSMC_HEADER + "1\t좋다\t1\n2\t나쁨 0\n")
    with pytest.raises(cli.InputError) as error:
        ct.get_processor("nsmc").read_split(str(tmp_path), "train")
    message = str(error.value)
    assert message.startswith("%s:3: expected 3 tab-separated columns" % path)
    assert "found 2" in message and "나쁨 0" in message


def test_an_unknown_label_names_file_line_and_row(tmp_path):
    path = write(tmp_path / "train.tsv", NSMC_HEADER + "1\t좋다\t1\n2\t별로\t5\n")
    with pytest.raises(cli.InputError) as error:
        ct.get_processor("nsmc").read_split(str(tmp_path), "train")
    assert str(error.value).startswith("%s:3: label '5' is not one of 0, 1" % path)


def test_a_missing_file_names_what_was_expected(tmp_path):
    with pytest.raises(cli.InputError) as error:
        ct.get_processor("nsmc").read_split(str(tmp_path), "train")
    assert "train.tsv or ratings_train.txt" in str(error.value)
    assert str(tmp_path) in str(error.value)
    with pytest.raises(cli.InputError, match="test.no_label.tsv"):
        ct.get_processor("hate").read_split(str(tmp_path), "test", need_labels=False)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes((NSMC_HEADER + "1\t좋다\t1\n").encode("utf-8") + b"2\t\xed\xa0\x80\t0\n")
    with pytest.raises(cli.InputError, match=r"train.tsv:3: not valid UTF-8"):
        ct.get_processor("nsmc").read_split(str(tmp_path), "train")


def test_a_folder_where_the_split_file_belongs(tmp_path):
    (tmp_path / "train.tsv").mkdir()
    with pytest.raises(cli.InputError, match=r"train.tsv: is a folder, not a file"):
        ct.get_processor("nsmc").read_split(str(tmp_path), "train")


def test_a_missing_column_is_reported_from_the_header(tmp_path):
    path = write(tmp_path / "dev.tsv", "id\tdocument\n1\t좋다\n")
    with pytest.raises(cli.InputError, match="%s:1: .*missing label" % path):
        ct.get_processor("nsmc").read_split(str(tmp_path), "dev")
    # Prediction does not need labels.
    split = ct.get_processor("nsmc").read_split(str(tmp_path), "dev", need_labels=False)
    assert not split.has_labels and split.examples[0].label is None


def test_task_names_are_case_insensitive_and_unknown_ones_list_the_tasks():
    assert ct.get_processor("Nsmc").name == "nsmc"
    assert ct.get_processor("HATE").labels == ("none", "offensive", "hate")
    with pytest.raises(cli.InputError, match="HATE, .*NSMC or CUSTOM"):
        ct.get_processor("cola")
    with pytest.raises(cli.InputError, match="--hate_label"):
        ct.get_processor("hate", hate_label="race")


@pytest.mark.parametrize("kind,labels", [
    ("hate", ["hate", "none", "offensive"]),
    ("bias", ["others", "none", "none"]),
    ("gender", ["False", "False", "False"]),
])
def test_hate_label_variants(tmp_path, kind, labels):
    write(tmp_path / "train.tsv", HATE_HEADER +
          "(현재 호텔주인 심정) 아18\tFalse\tothers\thate\n"
          '"노래""대단한 너""였어요"\tFalse\tnone\tnone\n'
          "지현우 나쁜놈\tFalse\tnone\toffensive\n")
    processor = ct.get_processor("hate", hate_label=kind)
    split = processor.read_split(str(tmp_path), "train")
    assert [e.label for e in split.examples] == labels
    assert split.examples[1].text == '노래"대단한 너"였어요'
    assert [e.guid for e in split.examples] == ["1", "2", "3"]
    assert processor.tag == "hate-%s" % kind


def test_hate_rejects_a_label_outside_the_chosen_set(tmp_path):
    path = write(tmp_path / "dev.tsv", HATE_HEADER + "댓글\tmaybe\tnone\tnone\n")
    with pytest.raises(cli.InputError, match="%s:2: label 'maybe'" % path):
        ct.get_processor("hate", hate_label="gender").read_split(str(tmp_path), "dev")


# ---------------------------------------------------------------------------------------
# The real data (reading only)


def data_rows(path):
    """Lines of a file less its header."""
    with open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1


def test_real_nsmc_splits(data_dir, is_full_data):
    """Every row of each split is read (on the full data: the published sizes), the three
    empty test reviews are kept and doubly quoted ones restored."""
    processor = ct.get_processor("NSMC")
    sizes, empties, expected = {}, {}, {}
    for split_name in ("train", "dev", "test"):
        split = processor.read_split(os.path.join(data_dir, "nsmc"), split_name)
        sizes[split_name] = len(split.examples)
        expected[split_name] = data_rows(split.path)
        empties[split_name] = ct.log_split(processor, split)
        assert {e.label for e in split.examples} == {"0", "1"}
        if split_name == "test":
            by_id = {e.guid: e.text for e in split.examples}
    if is_full_data:
        assert expected == {"train": 130000, "dev": 20000, "test": 50000}
    assert sizes == expected
    assert empties["test"] == 3
    assert by_id["5494222"].startswith('"결혼은 현실이에요 징징징" 성현아')
    assert not any(t.startswith('"""') for t in by_id.values())


@pytest.mark.parametrize("kind,train_counts", [
    ("hate", {"none": 3486, "offensive": 2499, "hate": 1911}),
    ("bias", {"none": 5148, "gender": 1232, "others": 1516}),
    ("gender", {"False": 6664, "True": 1232}),
])
def test_real_hate_splits(data_dir, is_full_data, kind, train_counts):
    """Every row is read with a label of the chosen set (on the full data: the published
    sizes and label counts); the test file has no labels."""
    processor = ct.get_processor("hate", hate_label=kind)
    train = processor.read_split(data_dir, "train")
    dev = processor.read_split(data_dir, "dev")
    test = processor.read_split(data_dir, "test", need_labels=False)
    sizes = tuple(len(split.examples) for split in (train, dev, test))
    assert sizes == tuple(data_rows(split.path) for split in (train, dev, test))
    counts = {}
    for example in train.examples:
        counts[example.label] = counts.get(example.label, 0) + 1
    if is_full_data:
        assert sizes == (7896, 471, 974)
        assert counts == train_counts
    else:
        assert set(counts) == set(train_counts)  # every label occurs in the sample
    assert not test.has_labels and test.examples[0].label is None
    assert test.path.endswith("test.no_label.tsv")
