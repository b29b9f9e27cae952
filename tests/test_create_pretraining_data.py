"""Tests of create_pretraining_data.py and shard_corpus.py and the modules behind them.

The golden test compares with examples written by BERT's original script (see
tests/fixtures/pretraining_golden/README.md); the statistics tests use the start of the real
corpus (DATA_DIR/corpus, or the shipped sample) with the shipped vocabulary.
"""

import json
import os
import random
import subprocess
import sys

import pytest

import tokenization
from krbert import cli
from krbert.corpus import shards as corpus_shards
from krbert.files import atomic
from krbert.pretraining import pipeline as create_lib
from krbert.pretraining import records as pretraining_records
from krbert.tf_compat import tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "fixtures", "pretraining_golden")
CORPUS = os.path.join(GOLDEN, "corpus.txt")
VOCAB = os.path.join(GOLDEN, "vocab.txt")


def settings(**overrides):
    """The original script's defaults (do_lower_case=False for Korean) with overrides."""
    values = {"do_lower_case": False, "do_whole_word_mask": False, "max_seq_length": 128,
              "max_predictions_per_seq": 20, "random_seed": 12345, "dupe_factor": 10,
              "masked_lm_prob": 0.15, "short_seq_prob": 0.1, "tokenizer": "wordpiece",
              "subchar": False}
    values.update(overrides)
    return values


def make(inputs, output, vocab=VOCAB, workers=1, in_process=True, **flags):
    """Runs the script's pipeline; returns its summary."""
    return create_lib.run(inputs, output, vocab, settings(**flags), num_workers=workers,
                          show_progress=False, in_process=in_process)


def records(path):
    """The serialized records of a TFRecord file."""
    return list(tf.io.tf_record_iterator(path))


def features(record):
    """{name: list} of one serialized example; checks every feature's dtype on the way."""
    example = tf.train.Example.FromString(record)
    out = {}
    for name, feature in example.features.feature.items():
        if name == "masked_lm_weights":
            assert feature.WhichOneof("kind") == "float_list"
            out[name] = list(feature.float_list.value)
        else:
            assert feature.WhichOneof("kind") == "int64_list", name
            out[name] = list(feature.int64_list.value)
    return out


@pytest.fixture(scope="module")
def golden():
    with open(os.path.join(GOLDEN, "golden.json")) as reader:
        return json.load(reader)


# ---------------------------------------------------------------------------------------------
# Exact output.

def test_encoder_matches_protobuf_serialization():
    rng = random.Random(3)
    for max_predictions in (0, 5):
        encoder = pretraining_records.ExampleEncoder(16, max_predictions, 30000)
        for _ in range(50):
            len_a, len_b = rng.randint(1, 6), rng.randint(1, 7)
            ids = [rng.randrange(30000) for _ in range(len_a + len_b + 3)]
            count = rng.randint(0, max_predictions)
            positions = sorted(rng.sample(range(len(ids)), count))
            labels = [rng.randrange(30000) for _ in positions]
            label = rng.randint(0, 1)
            pad = 16 - len(ids)
            expected = tf.train.Example(features=tf.train.Features(feature={
                "input_ids": _int(ids + [0] * pad),
                "input_mask": _int([1] * len(ids) + [0] * pad),
                "segment_ids": _int([0] * (len_a + 2) + [1] * (len_b + 1) + [0] * pad),
                "masked_lm_positions": _int(positions + [0] * (max_predictions - count)),
                "masked_lm_ids": _int(labels + [0] * (max_predictions - count)),
                "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(
                    value=[1.0] * count + [0.0] * (max_predictions - count))),
                "next_sentence_labels": _int([label]),
            })).SerializeToString(deterministic=True)
            assert encoder.encode(ids, len_a, len_b, positions, labels, label) == expected


def _int(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


@pytest.mark.parametrize("run_index", [0, 1], ids=["wordpiece_mask", "whole_word_mask"])
def test_same_examples_as_the_original(tmp_path, golden, run_index):
    run = golden["runs"][run_index]
    output = str(tmp_path / "out.tfrecord")
    summary = make(CORPUS, output, **run["flags"])
    ours = records(output)
    assert summary["instances"] == len(ours) == len(run["examples"])
    for number, (record, expected) in enumerate(zip(ours, run["examples"])):
        got = features(record)
        assert [got[name] for name in golden["features"]] == expected, "instance %d" % number
        values = dict(zip(golden["features"], expected))
        canonical = tf.train.Example(features=tf.train.Features(feature={
            name: (tf.train.Feature(float_list=tf.train.FloatList(value=value))
                   if name == "masked_lm_weights" else _int(value))
            for name, value in values.items()})).SerializeToString(deterministic=True)
        assert record == canonical, "instance %d: bytes differ" % number


def test_feature_layout_and_dtypes(tmp_path):
    output = str(tmp_path / "out.tfrecord")
    make(CORPUS, output, max_seq_length=32, max_predictions_per_seq=5, dupe_factor=2)
    vocab = tokenization.load_vocab(VOCAB)
    examples = [features(record) for record in records(output)]
    assert examples
    for example in examples:
        assert sorted(example) == sorted(pretraining_records.FEATURE_NAMES)
        assert all(len(example[name]) == 32 for name in ("input_ids", "input_mask",
                                                         "segment_ids"))
        assert all(len(example[name]) == 5 for name in ("masked_lm_positions",
                                                        "masked_lm_ids", "masked_lm_weights"))
        length = sum(example["input_mask"])
        assert example["input_mask"] == [1] * length + [0] * (32 - length)
        ids, segments = example["input_ids"], example["segment_ids"]
        assert ids[0] == vocab["[CLS]"] and ids[length - 1] == vocab["[SEP]"]
        assert ids[length:] == [0] * (32 - length) and segments[length:] == [0] * (32 - length)
        len_a = segments.index(1) - 2
        assert segments[:len_a + 2] == [0] * (len_a + 2) and ids[len_a + 1] == vocab["[SEP]"]
        count = int(sum(example["masked_lm_weights"]))
        assert example["masked_lm_weights"] == [1.0] * count + [0.0] * (5 - count)
        positions = example["masked_lm_positions"][:count]
        assert positions == sorted(set(positions)) and count >= 1
        assert all(0 < p < length - 1 and p != len_a + 1 for p in positions)
        assert example["next_sentence_labels"] in ([0], [1])


# ---------------------------------------------------------------------------------------------
# Statistics on the real corpus.

@pytest.fixture(scope="module")
def real_examples(data_dir, tmp_path_factory):
    """A few thousand instances from the start of the NSMC review corpus, both maskings."""
    folder = tmp_path_factory.mktemp("real")
    text = str(folder / "reviews.txt")
    with open(os.path.join(data_dir, "corpus", "nsmc_reviews.txt"), "rb") as reader, \
            open(text, "wb") as writer:
        for number, line in enumerate(reader):
            if number >= 6000 and not line.strip():
                break
            writer.write(line)
    vocab_file = os.path.join(ROOT, "vocab", "vocab_20000.txt")
    out = {}
    for whole_word in (False, True):
        output = str(folder / ("wwm%d.tfrecord" % whole_word))
        make(text, output, vocab=vocab_file, dupe_factor=3, do_whole_word_mask=whole_word)
        out[whole_word] = [features(record) for record in records(output)]
    return out, tokenization.load_vocab(vocab_file)


def test_masking_statistics(real_examples):
    examples, vocab = real_examples[0][False], real_examples[1]
    assert len(examples) > 2500
    tokens = masked = as_mask = kept = replaced = 0
    for example in examples:
        length = sum(example["input_mask"])
        count = int(sum(example["masked_lm_weights"]))
        assert count == min(20, max(1, int(round(length * 0.15))))
        tokens += length
        masked += count
        for position, label in zip(example["masked_lm_positions"][:count],
                                   example["masked_lm_ids"][:count]):
            token = example["input_ids"][position]
            if token == vocab["[MASK]"]:
                as_mask += 1
            elif token == label:
                kept += 1
            else:
                replaced += 1
    assert 0.14 < masked / float(tokens) < 0.16
    assert 0.77 < as_mask / float(masked) < 0.83
    assert 0.08 < kept / float(masked) < 0.12
    assert 0.08 < replaced / float(masked) < 0.12


def test_next_sentence_balance(real_examples):
    for examples in real_examples[0].values():
        random_next = sum(example["next_sentence_labels"][0] for example in examples)
        assert 0.45 < random_next / float(len(examples)) < 0.6


def _word_groups(ids, continues):
    """The original's masking candidates with whole-word masking (positions per word)."""
    groups = []
    for position, token in enumerate(ids):
        if token in (2, 3):  # [CLS], [SEP]
            continue
        if groups and continues(token):
            groups[-1].append(position)
        else:
            groups.append([position])
    return groups


def test_whole_word_masking_masks_every_piece(real_examples):
    by_mode, vocab = real_examples
    assert (vocab["[CLS]"], vocab["[SEP]"]) == (2, 3)
    inverse = {index: token for token, index in vocab.items()}

    def continues(token):
        return inverse[token].startswith("##")

    partial = {}
    for whole_word, examples in by_mode.items():
        partial[whole_word] = multi_piece = 0
        for example in examples:
            count = int(sum(example["masked_lm_weights"]))
            positions = set(example["masked_lm_positions"][:count])
            length = sum(example["input_mask"])
            ids = list(example["input_ids"][:length])
            for position, label in zip(example["masked_lm_positions"][:count],
                                       example["masked_lm_ids"][:count]):
                ids[position] = label  # the text before masking
            for group in _word_groups(ids, continues):
                hit = len(positions.intersection(group))
                if 0 < hit < len(group):
                    partial[whole_word] += 1
                if hit and len(group) > 1:
                    multi_piece += 1
        assert multi_piece > 100
    assert partial[True] == 0
    assert partial[False] > 100  # per-piece masking does split words


# ---------------------------------------------------------------------------------------------
# Shards, workers and resuming.

def _two_shards(folder):
    """Cuts the golden corpus into two shard files; returns their paths."""
    names, documents, _ = corpus_shards.shard_corpus([CORPUS], str(folder / "part"), ".txt",
                                                     num_shards=2, show_progress=False)
    assert len(names) == 2 and documents == 9
    return names


def _documents(data):
    """The documents of corpus bytes: lists of non-blank lines, split at blank lines."""
    documents, current = [], []
    for line in data.split(b"\n"):
        if line.decode("utf-8", "replace").strip():
            current.append(line)
        elif current:
            documents.append(current)
            current = []
    return documents + ([current] if current else [])


def test_shard_corpus_cuts_at_document_boundaries(tmp_path):
    with open(CORPUS, "rb") as reader:
        documents = _documents(reader.read())
    assert len(documents) == 9
    names, count, _ = corpus_shards.shard_corpus([CORPUS], str(tmp_path / "a"), ".txt",
                                                 num_shards=3, show_progress=False)
    assert len(names) == 3 and count == 9
    by_lines, _, _ = corpus_shards.shard_corpus([CORPUS], str(tmp_path / "b"), ".txt",
                                                lines_per_shard=10, show_progress=False)
    assert len(by_lines) > 2
    for shards in (names, by_lines):
        pieces = []
        for name in shards:
            with open(name, "rb") as reader:
                pieces.extend(_documents(reader.read()))
        assert pieces == documents  # same documents, same order, none split or merged


def test_shards_in_parallel_equal_each_shard_alone(tmp_path):
    shards = _two_shards(tmp_path)
    out_dir = tmp_path / "out"
    summary = make(str(tmp_path / "part-*.txt"), str(out_dir) + "/", workers=2,
                   in_process=False, max_seq_length=32, dupe_factor=3)
    assert summary["shards"] == 2 and summary["workers"] == 2
    assert 0 < summary["peak_worker_rss_mb"] < 1e5
    for shard in shards:
        alone = str(tmp_path / ("alone-" + os.path.basename(shard) + ".tfrecord"))
        make(shard, alone, max_seq_length=32, dupe_factor=3)
        parallel = out_dir / (os.path.splitext(os.path.basename(shard))[0] + ".tfrecord")
        assert records(str(parallel)) == records(alone)
        sidecar = json.loads((out_dir / (parallel.name + ".json")).read_text())
        assert sidecar["instances"] == len(records(alone))
        assert sidecar["settings"]["max_seq_length"] == 32


def test_output_names():
    inputs = ["/d/a.txt", "/d/b.txt"]
    assert create_lib.plan_outputs(inputs, "/o/x.tfrecord") == [
        ("/d/a.txt", ["/o/x-00000-of-00002.tfrecord"]),
        ("/d/b.txt", ["/o/x-00001-of-00002.tfrecord"])]
    assert create_lib.plan_outputs(inputs, "/o/") == [("/d/a.txt", ["/o/a.tfrecord"]),
                                                      ("/d/b.txt", ["/o/b.tfrecord"])]
    assert create_lib.plan_outputs(inputs, "/o/1,/o/2") == [("/d/a.txt", ["/o/1"]),
                                                            ("/d/b.txt", ["/o/2"])]
    assert create_lib.plan_outputs(inputs[:1], "/o/1,/o/2") == [("/d/a.txt", ["/o/1", "/o/2"])]
    with pytest.raises(cli.InputError):
        create_lib.plan_outputs(inputs + ["/e/c.txt"], "/o/1,/o/2")


def test_round_robin_over_several_outputs(tmp_path):
    single, pair = str(tmp_path / "one"), [str(tmp_path / "r0"), str(tmp_path / "r1")]
    make(CORPUS, single, max_seq_length=32, dupe_factor=2)
    make(CORPUS, ",".join(pair), max_seq_length=32, dupe_factor=2)
    everything = records(single)
    assert records(pair[0]) == everything[0::2] and records(pair[1]) == everything[1::2]


def test_rerun_skips_complete_outputs_and_redoes_interrupted_ones(tmp_path):
    _two_shards(tmp_path)
    pattern, out = str(tmp_path / "part-*.txt"), str(tmp_path / "out") + "/"
    first = make(pattern, out, max_seq_length=32, dupe_factor=2)
    assert (first["shards"], first["skipped"]) == (2, 0)
    done, interrupted = tmp_path / "out" / "part-00000.tfrecord", \
        tmp_path / "out" / "part-00001.tfrecord"
    expected = interrupted.read_bytes()
    stamp = os.stat(str(done)).st_mtime_ns
    # An interrupted run leaves a partial temporary file and no output or sidecar.
    interrupted.unlink()
    (tmp_path / "out" / "part-00001.tfrecord.json").unlink()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = atomic.temporary_name(str(interrupted), dead.pid)
    with open(leftover, "wb") as writer:
        writer.write(expected[:100])
    again = make(pattern, out, max_seq_length=32, dupe_factor=2)
    assert (again["shards"], again["skipped"]) == (1, 1)
    assert interrupted.read_bytes() == expected
    assert not os.path.exists(leftover)
    assert os.stat(str(done)).st_mtime_ns == stamp
    # A truncated output does not count as complete; other flags redo everything.
    interrupted.write_bytes(expected[:100])
    assert make(pattern, out, max_seq_length=32, dupe_factor=2)["shards"] == 1
    assert interrupted.read_bytes() == expected
    assert make(pattern, out, max_seq_length=32, dupe_factor=2, random_seed=1)["shards"] == 2


# ---------------------------------------------------------------------------------------------
# Bad input.

def test_invalid_utf8_is_replaced_and_counted(tmp_path, capsys):
    text = tmp_path / "bad.txt"
    with open(CORPUS, "rb") as reader:
        data = reader.read()
    text.write_bytes(b"caf\xe9 \xff\xfe movie\n" + data + b"\n\xc3 broken\n")
    summary = make(str(text), str(tmp_path / "out"), max_seq_length=32, dupe_factor=1)
    assert summary["invalid_utf8_lines"] == 2
    assert "2 lines were not valid UTF-8" in capsys.readouterr().err
    assert json.loads((tmp_path / "out.json").read_text())["invalid_utf8_lines"] == 2


BAD_INPUTS = ("empty_input", "missing_vocab", "no_match", "unwritable")


@pytest.fixture(scope="module")
def bad_input_runs(tmp_path_factory):
    """Runs the script once per bad input; {case: (exit status, stderr lines)}."""
    folder = tmp_path_factory.mktemp("bad")
    empty = folder / "empty.txt"
    empty.write_text(u"\n  \n\n")
    blocker = folder / "a_file"
    blocker.write_text(u"not a directory")
    args = {
        "empty_input": ["--input_file=%s" % empty, "--vocab_file=%s" % VOCAB],
        "missing_vocab": ["--input_file=%s" % CORPUS,
                          "--vocab_file=%s" % (folder / "no_vocab.txt")],
        "no_match": ["--input_file=%s" % (folder / "nothing-*.txt"), "--vocab_file=%s" % VOCAB],
        "unwritable": ["--input_file=%s" % CORPUS, "--vocab_file=%s" % VOCAB],
    }
    results = {}
    for pair in (BAD_INPUTS[:2], BAD_INPUTS[2:]):  # two at a time: one per core
        processes = {}
        for case in pair:
            output = blocker / "sub" / "o.tfrecord" if case == "unwritable" else folder / case
            command = [sys.executable, os.path.join(ROOT, "create_pretraining_data.py"),
                       "--do_lower_case=False", "--output_file=%s" % output] + args[case]
            processes[case] = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE)
        for case, process in processes.items():
            _, stderr = process.communicate(timeout=300)
            results[case] = (process.returncode,
                             stderr.decode("utf-8", "replace").strip().splitlines())
    return results


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_one_line_error(bad_input_runs, case):
    status, stderr = bad_input_runs[case]
    assert status == 1
    assert len(stderr) == 1 and stderr[0].startswith("error: "), stderr
    expected = {"empty_input": "empty.txt", "missing_vocab": "no_vocab.txt",
                "no_match": "nothing-*.txt", "unwritable": "a_file"}[case]
    assert expected in stderr[0]
