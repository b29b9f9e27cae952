"""extract_features.py as users run it, against a forward pass written out in numpy.

The test writes a 3-layer, 16-wide BERT whose every weight (LayerNorm scales and biases
included) is drawn here, so the expected values come from those arrays alone. The input is
real: NSMC test reviews, pairs of them joined by " ||| ", an empty and a blank line; with
--max_seq_length=24 several lines are cut, and batches of 4 lines of different lengths are
padded, so the attention mask matters. Each run is a separate process (flags are
process-wide).

Set ORIGINAL_BERT_DIR to a checkout of google-research/bert (outside this repository) to also
compare with the original's output; it needs TensorFlow 1.x, so under TensorFlow 2 also set
ORIGINAL_BERT_PYTHON to a Python with TF 1.15.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tokenization
from krbert.estimator import tpu_vm
from krbert.tf_compat import tf
from tiny_models import original_release
from tiny_models import run_classifier as run_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "extract_features.py")
MAX_SEQ_LENGTH = 24
CONFIG = {
    "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 16, "initializer_range": 0.02, "intermediate_size": 32,
    "max_position_embeddings": 32, "num_attention_heads": 2, "num_hidden_layers": 3,
    "type_vocab_size": 2, "vocab_size": 20000,
}


# ---------------------------------------------------------------------------------------
# The model: known weights, and the forward pass in numpy.


def write_checkpoint(folder, config):
    """Saves a BERT with weights drawn by numpy; returns (checkpoint prefix, weights)."""
    import modeling
    rng = np.random.RandomState(7)
    weights = {}
    with tf.Graph().as_default():
        ids = tf.placeholder(tf.int32, [None, None])
        modeling.BertModel(modeling.BertConfig.from_dict(config), False, ids)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for var in tf.global_variables():
                shape = var.shape.as_list()
                value = rng.normal(0.0, 0.3, shape).astype(np.float32)
                if var.op.name.endswith("gamma"):
                    value += 1.0
                var.load(value, session)
                weights[var.op.name] = value.astype(np.float64)
            prefix = os.path.join(folder, "bert_model.ckpt")
            tf.train.Saver().save(session, prefix)
    return prefix, weights


def layer_norm(x, weights, scope):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(variance + 1e-12) * weights[scope + "/gamma"] +
            weights[scope + "/beta"])


def gelu(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def numpy_bert(weights, config, input_ids, segment_ids):
    """Every encoder layer's output, float64 [S, H] each, for one unpadded sequence."""
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    size = hidden // heads
    length = len(input_ids)
    x = (weights["bert/embeddings/word_embeddings"][input_ids] +
         weights["bert/embeddings/token_type_embeddings"][segment_ids] +
         weights["bert/embeddings/position_embeddings"][:length])
    x = layer_norm(x, weights, "bert/embeddings/LayerNorm")
    outputs = []
    for layer in range(config["num_hidden_layers"]):
        scope = "bert/encoder/layer_%d/" % layer

        def dense(t, name):
            return t @ weights[scope + name + "/kernel"] + weights[scope + name + "/bias"]

        def split(t):
            return t.reshape(length, heads, size).transpose(1, 0, 2)  # [N, S, D]

        query, key, value = (split(dense(x, "attention/self/" + name))
                             for name in ("query", "key", "value"))
        scores = query @ key.transpose(0, 2, 1) / np.sqrt(size)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ value).transpose(1, 0, 2).reshape(length, hidden)
        attention = layer_norm(dense(context, "attention/output/dense") + x, weights,
                               scope + "attention/output/LayerNorm")
        x = layer_norm(dense(gelu(dense(attention, "intermediate/dense")), "output/dense") +
                       attention, weights, scope + "output/LayerNorm")
        outputs.append(x)
    return outputs


# ---------------------------------------------------------------------------------------
# Input lines and what they should become.


def expected_input(tokenizer, line):
    """(tokens, segment_ids, cut) of one input line: the format's rules, written out here."""
    line = line.strip()
    if " ||| " in line:
        cut = line.rindex(" ||| ")
        a, b = tokenizer.tokenize(line[:cut]), tokenizer.tokenize(line[cut + 5:])
    else:
        a, b = tokenizer.tokenize(line), []
    cut = len(a) + len(b) > MAX_SEQ_LENGTH - (3 if b else 2)
    if not b:
        a = a[:MAX_SEQ_LENGTH - 2]
        return ["[CLS]"] + a + ["[SEP]"], [0] * (len(a) + 2), cut
    while len(a) + len(b) > MAX_SEQ_LENGTH - 3:
        (a if len(a) > len(b) else b).pop()
    return (["[CLS]"] + a + ["[SEP]"] + b + ["[SEP]"],
            [0] * (len(a) + 2) + [1] * (len(b) + 1), cut)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("extract")
    config_path = str(folder / "bert_config.json")
    with open(config_path, "w") as handle:
        json.dump(CONFIG, handle)
    checkpoint, weights = write_checkpoint(str(folder), CONFIG)
    with open(os.path.join(data_dir, "nsmc", "test.tsv"), encoding="utf-8") as handle:
        reviews = [line.split("\t")[1] for line in list(handle)[1:40]]
    reviews = [r for r in reviews if r.strip()]
    lines = (reviews[:10] + ["", reviews[10] + " ||| " + reviews[11], "   ",
                             " ||| ".join(sorted(reviews, key=len)[:3]),
                             reviews[15] + " " + reviews[16] + " ||| " + reviews[17]] +
             reviews[18:21])
    input_file = str(folder / "input.txt")
    with open(input_file, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    vocab = os.path.join(ROOT, "vocab", "vocab_20000.txt")
    tokenizer = tokenization.FullTokenizer(vocab, do_lower_case=False)
    expected = []
    for line in lines:
        tokens, segment_ids, cut = expected_input(tokenizer, line)
        ids = tokenizer.convert_tokens_to_ids(tokens)
        expected.append({"tokens": tokens, "segment_ids": segment_ids, "input_ids": ids,
                         "cut": cut,
                         "layers": numpy_bert(weights, CONFIG, ids, segment_ids)})
    flags = ["--input_file=%s" % input_file, "--vocab_file=%s" % vocab,
             "--bert_config_file=%s" % config_path, "--init_checkpoint=%s" % checkpoint,
             "--do_lower_case=False", "--max_seq_length=%d" % MAX_SEQ_LENGTH,
             "--batch_size=4", "--layers=-1,0"]
    return {"folder": folder, "flags": flags, "lines": lines, "expected": expected,
            "weights": weights}


def run(args, expect_ok=True):
    """Runs extract_features.py; returns (returncode, stderr)."""
    return run_script(args, expect_ok, script=SCRIPT)


@pytest.fixture(scope="module")
def json_run(setup):
    output = str(setup["folder"] / "features.jsonl")
    _, log = run(setup["flags"] + ["--output_file=%s" % output])
    with open(output, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return {"records": records, "log": log, "output": output}


# ---------------------------------------------------------------------------------------
# JSON lines


def test_json_lines_hold_every_token_and_layer_with_the_numpy_values(setup, json_run):
    records = json_run["records"]
    assert len(records) == len(setup["lines"])
    hidden = CONFIG["hidden_size"]
    worst = 0.0
    for index, (record, expected) in enumerate(zip(records, setup["expected"])):
        assert list(record) == ["linex_index", "features"]
        assert record["linex_index"] == index
        assert [f["token"] for f in record["features"]] == expected["tokens"]
        for position, feature in enumerate(record["features"]):
            assert list(feature) == ["token", "layers"]
            assert [layer["index"] for layer in feature["layers"]] == [-1, 0]
            for layer in feature["layers"]:
                assert list(layer) == ["index", "values"]
                values = layer["values"]
                assert len(values) == hidden
                assert all(round(v, 6) == v for v in values)  # 6 decimals, as the original
                truth = expected["layers"][layer["index"]][position]
                worst = max(worst, float(np.abs(np.array(values) - truth).max()))
    assert worst < 1e-5, worst


def test_pairs_have_segment_ids_and_split_at_the_last_separator(setup, json_run):
    records = json_run["records"]
    pairs = [i for i, line in enumerate(setup["lines"]) if " ||| " in line]
    assert len(pairs) == 3
    for index in pairs:
        tokens = [f["token"] for f in records[index]["features"]]
        assert tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
        expected = setup["expected"][index]
        assert expected["segment_ids"][-1] == 1
        # The values match the forward pass with these segment ids, not with all zeros.
        got = np.array([f["layers"][0]["values"] for f in records[index]["features"]])
        assert np.abs(got - expected["layers"][-1]).max() < 1e-5
        zeros = numpy_bert(setup["weights"], CONFIG, expected["input_ids"],
                           [0] * len(tokens))
        assert np.abs(got - zeros[-1]).max() > 0.01
    # "a ||| b ||| c" is the pair ("a ||| b", "c"), as in the original.
    double = setup["lines"][pairs[1]]
    assert double.count(" ||| ") == 2
    tokens = [f["token"] for f in records[pairs[1]]["features"]]
    first_sep = tokens.index("[SEP]")
    assert "|" in tokens[:first_sep] and "|" not in tokens[first_sep:]


def test_empty_and_cut_lines_are_kept_in_order_and_counted(setup, json_run):
    records = json_run["records"]
    blank = [i for i, line in enumerate(setup["lines"]) if not line.strip()]
    assert len(blank) == 2
    for index in blank:
        assert [f["token"] for f in records[index]["features"]] == ["[CLS]", "[SEP]"]
    cut = [i + 1 for i, e in enumerate(setup["expected"]) if e["cut"]]
    assert len(cut) > 2
    summary = [line for line in json_run["log"].splitlines() if "Wrote " in line][-1]
    assert ("%d line(s), 3 pair(s); 2 line(s) with no tokens embedded as [CLS] [SEP] "
            "(line %d, %d)" % (len(setup["lines"]), blank[0] + 1, blank[1] + 1)) in summary
    assert summary.endswith("%d line(s) cut to %d tokens (line %s)" % (
        len(cut), MAX_SEQ_LENGTH, ", ".join(str(n) for n in cut)))
    folder = os.path.dirname(json_run["output"])
    assert not [name for name in os.listdir(folder) if ".tmp-" in name]


# ---------------------------------------------------------------------------------------
# Pooled vectors


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pooled_vectors_match_the_numpy_layers(setup, pooling):
    output = str(setup["folder"] / ("%s.npy" % pooling))
    _, log = run(setup["flags"] + ["--output_file=%s" % output, "--layers=-1,-3",
                                   "--pooling=%s" % pooling])
    vectors = np.load(output)
    hidden = CONFIG["hidden_size"]
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(setup["lines"]), 2 * hidden)
    assert "[%d, %d] float32" % vectors.shape in log
    for row, expected in zip(vectors, setup["expected"]):
        layers = np.concatenate([expected["layers"][-1], expected["layers"][-3]], axis=1)
        truth = layers[0] if pooling == "cls" else layers.mean(axis=0)
        assert np.abs(row - truth).max() < 1e-5
    if pooling == "mean":
        # Lines of a batch have different lengths: padding must not enter the mean.
        lengths = {len(e["tokens"]) for e in setup["expected"][:4]}
        assert len(lengths) > 1


# ---------------------------------------------------------------------------------------
# Bad input


def test_invalid_utf8_is_a_one_line_error_with_file_and_line(setup, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(u"좋다\n괜찮다\n".encode("utf-8") + u"별로".encode("cp949") + b"\n")
    output = tmp_path / "out.jsonl"
    flags = [f for f in setup["flags"] if not f.startswith("--input_file")]
    code, err = run(flags + ["--input_file=%s" % bad, "--output_file=%s" % output],
                    expect_ok=False)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("error: %s:3: not valid UTF-8" % bad)
    assert "Traceback" not in err
    assert os.listdir(str(tmp_path)) == ["bad.txt"]


@pytest.mark.parametrize("case, message", [
    ("npy_without_pooling", "without --pooling=cls or mean the output is JSON lines"),
    ("pooling_to_json", "--pooling=mean writes a .npy array"),
    ("layer", "--layers=-1,3: the model has 3 layers, so an index is from -3 to 2"),
    ("checkpoint", "no checkpoint there"),
    ("config", "bert/embeddings/word_embeddings is [20000, 16] there but [20000, 32]"),
])
def test_bad_flags_are_one_line_errors(setup, tmp_path, case, message):
    output = {"npy_without_pooling": "out.npy"}.get(case, "out.jsonl")
    extra = {"pooling_to_json": ["--pooling=mean"], "layer": ["--layers=-1,3"],
             "checkpoint": ["--init_checkpoint=%s" % (tmp_path / "nothing.ckpt")]}.get(case, [])
    if case == "config":
        wider = str(tmp_path / "bert_config.json")
        with open(wider, "w") as handle:
            json.dump(dict(CONFIG, hidden_size=32), handle)
        extra = ["--bert_config_file=%s" % wider]
    code, err = run(setup["flags"] + ["--output_file=%s" % (tmp_path / output)] + extra,
                    expect_ok=False)
    assert code == 1
    assert message in err.strip().splitlines()[-1]
    assert "Traceback" not in err
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith("out")]


# ---------------------------------------------------------------------------------------
# The original release (optional)


def test_same_output_as_the_original_release(setup, json_run, tmp_path):
    original, python = original_release()
    output = str(tmp_path / "original.jsonl")
    done = subprocess.run(
        [python, os.path.join(original, "extract_features.py"), "--output_file=%s" % output]
        + setup["flags"], cwd=original, timeout=600,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(output, encoding="utf-8") as handle:
        theirs = [json.loads(line) for line in handle]
    ours = json_run["records"]
    assert len(theirs) == len(ours)
    for a, b in zip(ours, theirs):
        assert a["linex_index"] == b["linex_index"]
        assert [f["token"] for f in a["features"]] == [f["token"] for f in b["features"]]
        for fa, fb in zip(a["features"], b["features"]):
            for la, lb in zip(fa["layers"], fb["layers"]):
                assert la["index"] == lb["index"]
                assert np.abs(np.array(la["values"]) - np.array(lb["values"])).max() < 1e-5


# ---------------------------------------------------------------------------------------
# Outputs: never over an input, whole or absent, nothing left behind


@pytest.fixture(scope="module")
def plain_setup(tmp_path_factory):
    """The model of ``setup`` with the shipped vocabulary and a few lines of text (no data
    folder needed): the flags, and the folder holding the inputs."""
    folder = tmp_path_factory.mktemp("plain")
    config_path = str(folder / "bert_config.json")
    with open(config_path, "w") as handle:
        json.dump(CONFIG, handle)
    checkpoint, _ = write_checkpoint(str(folder), CONFIG)
    input_file = folder / "input.txt"
    input_file.write_text(u"좋은 영화 최고\n배우들 연기도 좋고 ||| 재미있어요\n\n별로예요\n" * 50,
                          encoding="utf-8")
    vocab = str(folder / "vocab.txt")
    with open(os.path.join(ROOT, "vocab", "vocab_20000.txt"), "rb") as source:
        with open(vocab, "wb") as target:
            target.write(source.read())
    flags = ["--input_file=%s" % input_file, "--vocab_file=%s" % vocab,
             "--bert_config_file=%s" % config_path, "--init_checkpoint=%s" % checkpoint,
             "--do_lower_case=False", "--max_seq_length=16", "--batch_size=8", "--layers=-1"]
    return {"folder": folder, "flags": flags, "input": str(input_file), "vocab": vocab,
            "config": config_path, "checkpoint": checkpoint}


def last_line(result):
    code, err = result
    assert code == 1 and "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err[-3000:]
    return errors[0]


def contents(folder):
    found = {}
    for name in sorted(os.listdir(str(folder))):
        with open(os.path.join(str(folder), name), "rb") as handle:
            found[name] = handle.read()
    return found


def test_bfloat16_vectors_are_float32_and_near_float32s(plain_setup, tmp_path):
    """--use_bfloat16: the encoder in bfloat16, the pooled vectors still float32 and near
    the float32 run's (bfloat16 keeps 8 bits of mantissa)."""
    vectors = []
    for extra in ([], ["--use_bfloat16"]):
        output = str(tmp_path / ("out%d.npy" % len(extra)))
        run(plain_setup["flags"] + ["--output_file=%s" % output, "--pooling=mean"] + extra)
        vectors.append(np.load(output))
    float32, bfloat16 = vectors
    assert bfloat16.dtype == np.float32 and bfloat16.shape == float32.shape
    assert not np.array_equal(float32, bfloat16)
    assert np.allclose(float32, bfloat16, atol=0.05), np.abs(float32 - bfloat16).max()


def test_use_tpu_off_a_tpu_is_one_line_before_any_work(plain_setup, tmp_path):
    if tpu_vm.tpu_devices():
        pytest.skip("this machine has a TPU")
    assert last_line(run(plain_setup["flags"] + [
        "--output_file=%s" % (tmp_path / "out.jsonl"), "--use_tpu"], expect_ok=False)
    ).startswith("error: --use_tpu without --tpu_name or --master")
    assert os.listdir(str(tmp_path)) == []


def test_an_output_file_that_is_an_input_is_refused_and_left_as_it_was(plain_setup, tmp_path):
    folder = plain_setup["folder"]
    before = contents(folder)
    link = tmp_path / "vocab_link.txt"
    os.symlink(plain_setup["vocab"], str(link))
    for output, named, flag in [
            (plain_setup["vocab"], plain_setup["vocab"], "--vocab_file"),
            (link, plain_setup["vocab"], "--vocab_file"),
            (plain_setup["input"], plain_setup["input"], "--input_file"),
            (plain_setup["config"], plain_setup["config"], "--bert_config_file"),
            (plain_setup["checkpoint"] + ".index", plain_setup["checkpoint"] + ".index",
             "--init_checkpoint")]:
        assert last_line(run(plain_setup["flags"] + ["--output_file=%s" % output],
                             expect_ok=False)) == (
            "error: %s: --output_file would write over this input (%s); write the output "
            "elsewhere" % (named, flag))
    assert contents(folder) == before and os.listdir(str(tmp_path)) == ["vocab_link.txt"]


def test_a_full_disk_or_a_read_only_folder_is_one_line_and_leaves_nothing(
        plain_setup, tmp_path, file_size_limit, read_only_folder):
    output = tmp_path / "out" / "features.jsonl"
    done = subprocess.run([sys.executable, SCRIPT] + plain_setup["flags"] +
                          ["--output_file=%s" % output], cwd=ROOT, timeout=600,
                          preexec_fn=file_size_limit(20000), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert last_line((done.returncode, done.stderr)).startswith(
        "error: %s: could not be written (" % output)
    assert os.listdir(str(output.parent)) == []
    output = read_only_folder / "features.jsonl"
    error = last_line(run(plain_setup["flags"] + ["--output_file=%s" % output],
                          expect_ok=False))
    assert error.startswith("error: %s: cannot write to this folder (" % read_only_folder)
    assert "Read-only file system" in error


def test_what_a_killed_run_left_is_removed_by_the_next_run(plain_setup, tmp_path):
    import signal
    import time
    output = tmp_path / "features.jsonl"
    process = subprocess.Popen([sys.executable, SCRIPT] + plain_setup["flags"] +
                               ["--output_file=%s" % output], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300

    def output_temporaries():  # not the folder's write probe, which comes and goes at once
        return [name for name in os.listdir(str(tmp_path))
                if name.startswith("features.jsonl") and ".tmp-" in name]

    while not output_temporaries():
        assert process.poll() is None and time.time() < deadline, "no temporary file seen"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = sorted(os.listdir(str(tmp_path)))
    assert left and all(".tmp-" in name for name in left), left
    _, log = run(plain_setup["flags"] + ["--output_file=%s" % output])
    assert os.listdir(str(tmp_path)) == ["features.jsonl"]
    for name in left:
        assert "Removed %s, left by a run that died" % (tmp_path / name) in log
