"""bert_config.json read strictly: every bad config is one line naming the file and the key."""

import glob
import json
import os
import subprocess
import sys

import pytest

import modeling
from krbert import bert_config, cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": 32, "initializer_range": 0.02, "intermediate_size": 64,
        "max_position_embeddings": 64, "num_attention_heads": 2, "num_hidden_layers": 2,
        "type_vocab_size": 2, "vocab_size": 100}


def without(key, **changes):
    config = dict(TINY, **changes)
    del config[key]
    return json.dumps(config)


BAD_CONFIGS = [
    # (case, file text, words the one-line message must hold)
    ("misspelt key", without("num_hidden_layers", num_hidden_layer=4),
     ["unknown key 'num_hidden_layer'", "did you mean 'num_hidden_layers'"]),
    ("unknown key", json.dumps(dict(TINY, hidden_layers=4)), ["unknown key 'hidden_layers'"]),
    ("missing key", without("num_hidden_layers"), ["key 'num_hidden_layers' is missing"]),
    ("string number", json.dumps(dict(TINY, hidden_size="32")),
     ["key 'hidden_size' is \"32\"", "positive integer"]),
    ("float count", json.dumps(dict(TINY, num_hidden_layers=2.0)),
     ["key 'num_hidden_layers' is 2.0"]),
    ("boolean count", json.dumps(dict(TINY, num_hidden_layers=True)),
     ["key 'num_hidden_layers' is true"]),
    ("dropout above 1", json.dumps(dict(TINY, hidden_dropout_prob=1.5)),
     ["key 'hidden_dropout_prob' is 1.5", "[0, 1)"]),
    ("unknown activation", json.dumps(dict(TINY, hidden_act="swish")),
     ["key 'hidden_act' is \"swish\""]),
    ("not an object", json.dumps([TINY]), ["holds a JSON list, not an object"]),
    ("invalid JSON", json.dumps(TINY)[:-1], ["not valid JSON", "line 1 column"]),
    ("heads do not divide", json.dumps(dict(TINY, hidden_size=30, num_attention_heads=4)),
     ["key 'hidden_size' (30) is not a multiple of 'num_attention_heads' (4)"]),
]


@pytest.mark.parametrize("case, text, words", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_a_bad_config_is_one_line_naming_the_file_and_the_key(tmp_path, case, text, words):
    path = tmp_path / "bert_config.json"
    path.write_text(text)
    with pytest.raises(cli.InputError) as error:
        modeling.BertConfig.from_json_file(str(path))
    message = str(error.value)
    assert message.startswith("%s: " % path) and "\n" not in message, message
    for word in words:
        assert word in message, message


def test_a_folder_or_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(cli.InputError, match="is a folder; give the BERT config's .json"):
        modeling.BertConfig.from_json_file(str(tmp_path))
    with pytest.raises(cli.InputError, match="not found"):
        modeling.BertConfig.from_json_file(str(tmp_path / "nope.json"))


def configs_load_with_all_their_values(paths):
    for path in paths:
        with open(path) as handle:
            values = json.load(handle)
        assert modeling.BertConfig.from_json_file(path).to_dict() == values, path


def test_every_shipped_config_loads_with_all_its_values():
    paths = sorted(glob.glob(os.path.join(ROOT, "vocab", "bert_config_*.json")))
    assert len(paths) == 3, paths
    configs_load_with_all_their_values(paths)


def test_every_published_config_loads_with_all_its_values(krbert_dir):
    paths = sorted(glob.glob(os.path.join(krbert_dir, "bert_config_*.json")))
    assert len(paths) == 3, paths
    configs_load_with_all_their_values(paths)


def test_keys_of_other_bert_releases_that_do_not_change_the_model_are_accepted(tmp_path):
    # The multilingual BERT release's config carries these besides the model's keys.
    extra = {"directionality": "bidi", "pooler_fc_size": 768,
             "pooler_num_attention_heads": 12, "pooler_num_fc_layers": 3,
             "pooler_size_per_head": 128, "pooler_type": "first_token_transform"}
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(dict(TINY, **extra)))
    config = modeling.BertConfig.from_json_file(str(path))
    assert config.to_dict() == TINY


def test_load_bert_config_checks_the_positions_hold_max_seq_length(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps(TINY))
    assert bert_config.load_bert_config(str(path), 64).max_position_embeddings == 64
    with pytest.raises(cli.InputError, match="--max_seq_length=65 exceeds "
                                             "max_position_embeddings=64"):
        bert_config.load_bert_config(str(path), 65)


@pytest.mark.parametrize("script", ["run_classifier.py", "run_pretraining.py"])
def test_both_scripts_stop_on_a_misspelt_key_in_one_line(tmp_path, script):
    config = tmp_path / "bert_config.json"
    config.write_text(without("num_hidden_layers", num_hidden_layer=4))
    data = tmp_path / "data.tfrecord"
    data.write_bytes(b"")
    args = ["--bert_config_file=%s" % config, "--output_dir=%s" % (tmp_path / "out"),
            "--do_train"]
    if script == "run_classifier.py":
        args += ["--task_name=nsmc", "--data_dir=%s" % tmp_path,
                 "--vocab_file=%s" % os.path.join(ROOT, "vocab", "vocab_20000.txt")]
    else:
        args += ["--input_file=%s" % data]
    done = subprocess.run([sys.executable, os.path.join(ROOT, script)] + args, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: %s: unknown key 'num_hidden_layer' (did you mean 'num_hidden_layers'?); the "
        "keys are %s" % (config, ", ".join(bert_config.CONFIG_KEYS)))


def test_every_activation_a_config_accepts_is_one_the_model_has():
    for name in bert_config.ACTIVATIONS:
        modeling.get_activation(name)  # raises ValueError for a name it does not know
    with pytest.raises(ValueError):
        modeling.get_activation("swish")
