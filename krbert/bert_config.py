"""The BERT model's configuration (bert_config.json), read strictly.

A config holds exactly the keys of the original release's bert_config.json; a missing,
misspelt or mistyped key is a one-line error naming the file and the key, never a model
silently built from defaults. ``modeling.BertConfig`` is this class.
"""

import collections
import copy
import difflib
import json

from krbert import cli
from krbert.tf_compat import tf


class BertConfig(object):
    """Hyper-parameters of a BertModel."""

    def __init__(self, vocab_size, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                 max_position_embeddings=512, type_vocab_size=16, initializer_range=0.02):
        """vocab_size V; hidden_size H (a multiple of num_attention_heads);
        intermediate_size: width of the feed-forward layer, activated by hidden_act (a
        name or a function); hidden_dropout_prob: dropout on embeddings and sub-layer
        outputs; attention_probs_dropout_prob: dropout on attention probabilities;
        max_position_embeddings: longest sequence; type_vocab_size: number of segment
        types; initializer_range: stddev of the truncated normal weight initializer.
        """
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_act = hidden_act
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range

    @classmethod
    def from_dict(cls, json_object, source="the BERT config"):
        """Builds a config from a dict holding every key of the original release's configs.

        Raises InputError naming ``source`` and the key when a key is unknown or missing,
        has the wrong type or range, or hidden_size is not a multiple of num_attention_heads.
        """
        check_config_dict(json_object, source)
        return cls(**{key: json_object[key] for key in CONFIG_KEYS})

    @classmethod
    def from_json_file(cls, json_file):
        """Builds a config from a JSON file (any path tf.io.gfile can read), strictly.

        Raises InputError naming the file (and the key) when it is missing, a folder, not
        JSON, not an object, or not a valid config (see ``from_dict``).
        """
        if tf.io.gfile.isdir(json_file):
            raise cli.InputError("%s: is a folder; give the BERT config's .json file"
                                 % json_file)
        if not tf.io.gfile.exists(json_file):
            raise cli.InputError("%s: not found; give the BERT config's .json file" % json_file)
        with tf.io.gfile.GFile(json_file, "rb") as reader:
            data = reader.read()
        try:
            json_object = json.loads(data.decode("utf-8-sig"))
        except ValueError as e:  # also UnicodeDecodeError
            raise cli.InputError("%s: not valid JSON (%s); fix the file" % (json_file, e))
        return cls.from_dict(json_object, source=json_file)

    def to_dict(self):
        """The parameters as a new dict."""
        return copy.deepcopy(self.__dict__)

    def to_json_string(self):
        """The parameters as indented JSON with sorted keys."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


# The keys of the original release's bert_config.json, each with the kind of value it holds.
ACTIVATIONS = ("gelu", "gelu_exact", "relu", "tanh", "linear")
"""The hidden_act names modeling.get_activation knows: gelu is the tanh form, gelu_exact erf."""

CONFIG_KEYS = collections.OrderedDict([
    ("vocab_size", "count"), ("hidden_size", "count"), ("num_hidden_layers", "count"),
    ("num_attention_heads", "count"), ("intermediate_size", "count"), ("hidden_act", "act"),
    ("hidden_dropout_prob", "prob"), ("attention_probs_dropout_prob", "prob"),
    ("max_position_embeddings", "count"), ("type_vocab_size", "count"),
    ("initializer_range", "scale"),
])
# Keys other BERT releases' configs carry that do not change this model; accepted and ignored.
IGNORED_CONFIG_KEYS = ("directionality", "pooler_fc_size", "pooler_num_attention_heads",
                       "pooler_num_fc_layers", "pooler_size_per_head", "pooler_type")
_KIND_RULES = {
    "count": ("a positive integer",
              lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0),
    "prob": ("a number in [0, 1)",
             lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1),
    "scale": ("a positive number",
              lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0),
    "act": ("one of " + ", ".join(ACTIVATIONS),
            lambda v: isinstance(v, str) and v.lower() in ACTIVATIONS),
}


def check_config_dict(json_object, source):
    """Raises InputError ``source: key ...; what to do`` for the first problem found."""
    if not isinstance(json_object, dict):
        raise cli.InputError("%s: holds a JSON %s, not an object of config keys; give a "
                             "bert_config.json" % (source, type(json_object).__name__))
    for key in sorted(json_object):
        if key not in CONFIG_KEYS and key not in IGNORED_CONFIG_KEYS:
            close = difflib.get_close_matches(key, list(CONFIG_KEYS), n=1)
            raise cli.InputError("%s: unknown key '%s'%s; the keys are %s" % (
                source, key, " (did you mean '%s'?)" % close[0] if close else "",
                ", ".join(CONFIG_KEYS)))
    for key, kind in CONFIG_KEYS.items():
        if key not in json_object:
            raise cli.InputError("%s: key '%s' is missing; add it (the original release's "
                                 "configs hold all of %s)" % (source, key, ", ".join(CONFIG_KEYS)))
        what, is_valid = _KIND_RULES[kind]
        if not is_valid(json_object[key]):
            raise cli.InputError("%s: key '%s' is %s but must be %s; fix the value" % (
                source, key, json.dumps(json_object[key]), what))
    if json_object["hidden_size"] % json_object["num_attention_heads"]:
        raise cli.InputError(
            "%s: key 'hidden_size' (%d) is not a multiple of 'num_attention_heads' (%d); "
            "change one of them" % (source, json_object["hidden_size"],
                                    json_object["num_attention_heads"]))


def load_bert_config(path, max_seq_length=None, flag="--bert_config_file"):
    """The BertConfig at ``path`` (strict, see ``BertConfig.from_json_file``), checked to
    hold ``max_seq_length`` positions when one is given; InputError otherwise."""
    if not path:
        raise cli.InputError("%s is required; give the model's bert_config.json (e.g. "
                             "vocab/bert_config_medium.json)" % flag)
    config = BertConfig.from_json_file(path)
    if max_seq_length is not None and max_seq_length > config.max_position_embeddings:
        raise cli.InputError(
            "--max_seq_length=%d exceeds max_position_embeddings=%d of %s; lower "
            "--max_seq_length or use a config with more positions"
            % (max_seq_length, config.max_position_embeddings, path))
    return config
