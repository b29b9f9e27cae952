"""The BERT model: configuration, embeddings and Transformer encoder.

Variable names and shapes follow the original BERT checkpoint layout exactly, so a
released (KR-)BERT TensorFlow checkpoint restores with no missing or unexpected variable
(the pretraining heads, under cls/, are in heads.py):

    bert/embeddings/{word_embeddings, token_type_embeddings, position_embeddings}
    bert/embeddings/LayerNorm/{beta, gamma}
    bert/encoder/layer_<i>/attention/self/{query, key, value}/{kernel, bias}
    bert/encoder/layer_<i>/attention/output/dense/{kernel, bias}
    bert/encoder/layer_<i>/attention/output/LayerNorm/{beta, gamma}
    bert/encoder/layer_<i>/intermediate/dense/{kernel, bias}
    bert/encoder/layer_<i>/output/dense/{kernel, bias}
    bert/encoder/layer_<i>/output/LayerNorm/{beta, gamma}
    bert/pooler/dense/{kernel, bias}

Shape letters in the docstrings: B batch size, S (F, T) sequence length (from, to),
H hidden size, E embedding size, N attention heads, D size per head, V vocabulary size.

The default float32 forward pass performs the original model's operations in the same
order. Optional reduced precision: ``BertModel(..., compute_dtype=tf.bfloat16)`` runs
the encoder in bfloat16 while every variable stays float32 under its usual name.
"""

import collections
import copy
import math
import re
import zlib

import numpy as np

from krbert.bert_config import BertConfig  # noqa: F401  (modeling.BertConfig, as in the original)
from krbert.tf_compat import tf

LAYER_NORM_EPSILON = 1e-12


class BertModel(object):
    """BERT encoder ("Bidirectional Encoder Representations from Transformers").

    Example: BertModel(config, True, ids, mask, segments).get_pooled_output() -> [B, H].
    """

    def __init__(self, config, is_training, input_ids, input_mask=None, token_type_ids=None,
                 use_one_hot_embeddings=False, scope=None, compute_dtype=tf.float32,
                 first_token_last_layer=False):
        """Builds the graph of the model.

        Args:
          config: a BertConfig.
          is_training: True applies dropout; False turns every dropout off and takes
            the GELU in the form the graph optimizer fuses (gelu_inference).
          input_ids: int32 [B, S] token ids.
          input_mask: optional int32 [B, S], 1 for real tokens and 0 for padding.
          token_type_ids: optional int32 [B, S] segment ids (default all 0).
          use_one_hot_embeddings: one-hot matmul word lookup (TPU) instead of tf.gather.
          scope: variable scope, "bert" by default.
          compute_dtype: dtype of the encoder computation (tf.float32 or tf.bfloat16);
            variables and all outputs stay float32.
          first_token_last_layer: the last layer computes the first ([CLS]) position
            alone, all the pooler reads (a sequence classifier's inference; the pooled
            output is the same); sequence_output is then [B, 1, H].
        """
        config = copy.deepcopy(config)
        if not is_training:
            config.hidden_dropout_prob = 0.0
            config.attention_probs_dropout_prob = 0.0
        compute_dtype = tf.as_dtype(compute_dtype)

        input_shape = get_shape_list(input_ids, expected_rank=2)
        batch_size, seq_length = input_shape[0], input_shape[1]
        if input_mask is None:
            input_mask = tf.ones(shape=[batch_size, seq_length], dtype=tf.int32)
        if token_type_ids is None:
            token_type_ids = tf.zeros(shape=[batch_size, seq_length], dtype=tf.int32)

        with tf.variable_scope(scope, default_name="bert"):
            with tf.variable_scope("embeddings"):
                (words, self.embedding_table) = embedding_lookup(
                    input_ids, config.vocab_size, embedding_size=config.hidden_size,
                    initializer_range=config.initializer_range,
                    use_one_hot_embeddings=use_one_hot_embeddings)
                self.embedding_output = embedding_postprocessor(
                    words, use_token_type=True, token_type_ids=token_type_ids,
                    token_type_vocab_size=config.type_vocab_size,
                    initializer_range=config.initializer_range,
                    max_position_embeddings=config.max_position_embeddings,
                    dropout_prob=config.hidden_dropout_prob)

            with tf.variable_scope("encoder"):
                attention_mask = create_attention_mask_from_input_mask(input_ids, input_mask)
                layers = transformer_model(
                    cast(self.embedding_output, compute_dtype), attention_mask,
                    hidden_size=config.hidden_size,
                    num_hidden_layers=config.num_hidden_layers,
                    num_attention_heads=config.num_attention_heads,
                    intermediate_size=config.intermediate_size,
                    intermediate_act_fn=inference_activation(
                        get_activation(config.hidden_act), is_training),
                    hidden_dropout_prob=config.hidden_dropout_prob,
                    attention_probs_dropout_prob=config.attention_probs_dropout_prob,
                    initializer_range=config.initializer_range, do_return_all_layers=True,
                    first_token_last_layer=first_token_last_layer)
            self.all_encoder_layers = [cast(layer, tf.float32) for layer in layers]
            self.sequence_output = self.all_encoder_layers[-1]

            with tf.variable_scope("pooler"):
                # The pooled output is a dense tanh layer on the first ([CLS]) token.
                first_token = tf.squeeze(layers[-1][:, 0:1, :], axis=1)
                pooled = dense_layer(first_token, config.hidden_size, name="dense",
                                     activation=tf.tanh,
                                     initializer_range=config.initializer_range)
                self.pooled_output = cast(pooled, tf.float32)

    def get_pooled_output(self):
        """float32 [B, H]: the pooled [CLS] representation."""
        return self.pooled_output

    def get_sequence_output(self):
        """float32 [B, S, H]: the final encoder layer."""
        return self.sequence_output

    def get_all_encoder_layers(self):
        """List of num_hidden_layers float32 [B, S, H] tensors, one per encoder layer."""
        return self.all_encoder_layers

    def get_embedding_output(self):
        """float32 [B, S, H]: word + position + token type embeddings, normalized."""
        return self.embedding_output

    def get_embedding_table(self):
        """float32 [V, H]: the word embedding variable."""
        return self.embedding_table


_GELU_SCALE = np.sqrt(2.0 / np.pi)
_GELU_CUBIC = 0.044715
_GELU_CLIP = 10.0  # tanh(sqrt(2 / pi) (10 + 0.044715 * 1000)) = tanh(43.7): 1 in float32


def gelu(x):
    """Gaussian Error Linear Unit, tanh approximation (https://arxiv.org/abs/1606.08415).

    gelu(x) = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))); any shape, same out.
    The gradient is written out by hand (_gelu_gradient): a few fused passes instead of
    the chain of elementwise gradients (the pow gradient alone costs more than the forward
    pass).

    The cube is taken of x clipped to +-_GELU_CLIP: beyond it tanh is +-1 exactly (in
    float32, float16 and bfloat16) whatever the cube, so the output does not change, while
    in float16 x^3 would overflow for |x| > 40 and the gradient turn into 0 * inf = nan.
    """
    clipped = tf.clip_by_value(x, -_GELU_CLIP, _GELU_CLIP)
    cube = tf.pow(clipped, 3)
    tanh = tf.tanh(_GELU_SCALE * (x + _GELU_CUBIC * cube))
    cdf = 0.5 * (1.0 + tanh)
    return _with_gradient(_GELU_GRADIENT, x * cdf, [x], [clipped, cube, tanh, cdf])


def gelu_inference(x):
    """gelu() for graphs that take no gradient of it: the same tanh formula, without the
    clipping and the hand-written gradient, so that TensorFlow's graph optimizer fuses it
    with the matrix product before it on oneDNN CPUs (TensorFlow 2: one _FusedMatMul with
    GeluApproximate instead of nine element-wise passes). x^3 may overflow to inf in
    float16; tanh then gives +-1 and the output stays finite, as there is no gradient."""
    return 0.5 * x * (1.0 + tf.tanh(_GELU_SCALE * (x + _GELU_CUBIC * x * x * x)))


def inference_activation(activation, is_training):
    """``activation``, or gelu_inference in place of gelu when not ``is_training``."""
    if activation is gelu and not is_training:
        return gelu_inference
    return activation


def _with_gradient(gradient_name, output, inputs, saved):
    """`output`, whose gradient with respect to `inputs` the gradient `gradient_name` gives.

    An IdentityN op passes `output`, `inputs` and the forward tensors `saved` through, and
    its registered gradient receives them all as op.inputs. Unlike tf.custom_gradient this
    adds no op outside the path to the output (tf.custom_gradient leaves an unused
    Identity behind in graph mode).
    """
    graph = tf.get_default_graph()
    with graph.gradient_override_map({"IdentityN": gradient_name}):
        return tf.identity_n([output] + list(inputs) + list(saved))[0]


_GELU_GRADIENT = "BertGelu"


@tf.RegisterGradient(_GELU_GRADIENT)
def _gelu_gradient(op, dy, *unused_dys):
    """d gelu / dx = cdf (1 + (1 - t) x c'(x)), t = tanh(c(x)), c the inner function.

    x c'(x) is taken at x clipped to +-_GELU_CLIP (finite in float16): beyond it 1 - t is 0
    (x > 0) or cdf is 0 (x < 0), so the gradient is 1 or 0 either way.
    """
    _, _, clipped, cube, tanh, cdf = op.inputs
    x_inner_derivative = _GELU_SCALE * clipped + (3.0 * _GELU_SCALE * _GELU_CUBIC) * cube
    return [None, dy * (cdf * (1.0 + (1.0 - tanh) * x_inner_derivative)), None, None, None,
            None]


def gelu_exact(x):
    """Exact GELU x * Phi(x), Phi the normal CDF via erf (Hugging Face's "gelu"); any shape."""
    return 0.5 * x * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0))))


def get_activation(activation_string):
    """Maps "gelu" (tanh), "gelu_exact" (erf), "relu", "tanh" to a function; "linear", "" or
    None to None.

    A non-string argument is returned unchanged; an unknown name raises ValueError.
    """
    if not isinstance(activation_string, str):
        return activation_string
    if not activation_string:
        return None
    act = activation_string.lower()
    functions = {"linear": None, "relu": tf.nn.relu, "gelu": gelu, "gelu_exact": gelu_exact,
                 "tanh": tf.tanh}
    if act not in functions:
        raise ValueError("unknown activation %r (use gelu, gelu_exact, relu, tanh or linear)"
                         % act)
    return functions[act]


def get_assignment_map_from_checkpoint(tvars, init_checkpoint):
    """Matches the graph variables tvars to the variables of the same name in a checkpoint.

    Returns:
      (assignment_map, initialized_variable_names): an OrderedDict checkpoint name ->
      graph name over the shared variables, for tf.train.init_from_checkpoint, and a
      dict holding each shared name both bare and with ":0" (value 1).
    """
    graph_names = set(re.sub(r":\d+$", "", var.name) for var in tvars)

    assignment_map = collections.OrderedDict()
    initialized_variable_names = {}
    for (name, _) in tf.train.list_variables(init_checkpoint):
        if name not in graph_names:
            continue
        assignment_map[name] = name
        initialized_variable_names[name] = 1
        initialized_variable_names[name + ":0"] = 1
    return (assignment_map, initialized_variable_names)


def dropout(input_tensor, dropout_prob):
    """Drops units with probability dropout_prob (None or 0.0: no-op); any shape."""
    if dropout_prob is None or dropout_prob == 0.0:
        return input_tensor
    return tf.nn.dropout(input_tensor, rate=dropout_prob)


def layer_norm(input_tensor, name=None):
    """Layer normalization of [..., W] over the last axis; same shape and dtype out.

    Variables `<name>/beta` and `<name>/gamma` [W] (name defaults to "LayerNorm");
    epsilon 1e-12; bfloat16 input is normalized in float32.
    """
    width = input_tensor.shape[-1:]
    with tf.variable_scope(name, default_name="LayerNorm"):
        beta = tf.get_variable("beta", shape=width, initializer=tf.zeros_initializer())
        gamma = tf.get_variable("gamma", shape=width, initializer=tf.ones_initializer())
        output = _normalize(cast(input_tensor, tf.float32), tf.convert_to_tensor(gamma),
                            tf.convert_to_tensor(beta))
        return cast(output, input_tensor.dtype)


def _normalize(x, gamma, beta):
    """gamma * (x - mean) / sqrt(variance + epsilon) + beta over the last axis of x.

    The forward pass is tf.nn.moments + tf.nn.batch_normalization; the gradient
    (_normalize_gradient) is the closed form, fewer passes over the activations than the
    generic one.
    """
    mean, variance = tf.nn.moments(x, [-1], keep_dims=True)
    output = tf.nn.batch_normalization(x, mean, variance, offset=beta, scale=gamma,
                                       variance_epsilon=LAYER_NORM_EPSILON)
    return _with_gradient(_NORMALIZE_GRADIENT, output, [x, gamma, beta], [mean, variance])


_NORMALIZE_GRADIENT = "BertLayerNorm"


@tf.RegisterGradient(_NORMALIZE_GRADIENT)
def _normalize_gradient(op, dy, *unused_dys):
    """Gradients of _normalize's output with respect to x, gamma and beta."""
    _, x, gamma, _, mean, variance = op.inputs
    inverse_std = tf.rsqrt(variance + LAYER_NORM_EPSILON)
    normalized = (x - mean) * inverse_std
    outer_axes = list(range(x.shape.ndims - 1))
    d_gamma = tf.reduce_sum(dy * normalized, outer_axes)
    d_beta = tf.reduce_sum(dy, outer_axes)
    d_normalized = dy * gamma
    d_x = inverse_std * (
        d_normalized - tf.reduce_mean(d_normalized, [-1], keepdims=True)
        - normalized * tf.reduce_mean(d_normalized * normalized, [-1], keepdims=True))
    return [None, d_x, d_gamma, d_beta, None, None]


def layer_norm_and_dropout(input_tensor, dropout_prob, name=None):
    """layer_norm, then dropout; same shape out."""
    return dropout(layer_norm(input_tensor, name), dropout_prob)


def create_initializer(initializer_range=0.02):
    """Truncated normal initializer with stddev initializer_range, seeded by the variable's
    name (NameSeededInitializer)."""
    return NameSeededInitializer(stddev=initializer_range)


class NameSeededInitializer(object):
    """A truncated normal (stddev ``stddev``) whose values depend only on the graph's seed
    (--seed, tf.set_random_seed) and the variable's name, not on how many ops the graph
    held before it: one device and N replicas of a tf.distribute strategy start from the
    same weights. Without a graph seed the values are random, as TensorFlow's."""

    def __init__(self, stddev=0.02):
        self.stddev = stddev

    def __call__(self, shape, dtype=tf.float32, partition_info=None):  # pylint: disable=unused-argument
        seed = None
        if tf.get_default_graph().seed is not None:
            seed = name_seed(tf.get_default_graph().get_name_scope())
        return tf.truncated_normal(shape, stddev=self.stddev, dtype=dtype or tf.float32,
                                   seed=seed)


def name_seed(scope):
    """An op seed from the name scope of a variable's initializer ('<variable>/Initializer',
    maybe under a replica's scope): the CRC-32 of the variable's name."""
    name = re.sub(r"^(replica|tower)_\d+/", "", scope)
    name = re.sub(r"/Initializer(/.*)?$", "", name)
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def dense_layer(input_tensor, units, name, activation=None, initializer_range=0.02):
    """Fully connected layer: [M, W] -> [M, units], in the dtype of the input.

    Same variables (`<name>/kernel` [W, units], `<name>/bias` [units]) and arithmetic
    as tf.layers.dense on a matrix; float32 variables are cast to a bfloat16 input.
    """
    width = get_shape_list(input_tensor)[-1]
    with tf.variable_scope(name):
        kernel = tf.get_variable("kernel", shape=[width, units],
                                 initializer=create_initializer(initializer_range))
        bias = tf.get_variable("bias", shape=[units], initializer=tf.zeros_initializer())
        output = tf.matmul(input_tensor, cast(kernel, input_tensor.dtype))
        output = tf.nn.bias_add(output, cast(bias, input_tensor.dtype))
        if activation is not None:
            output = activation(output)
        return output


def embedding_lookup(input_ids, vocab_size, embedding_size=128, initializer_range=0.02,
                     word_embedding_name="word_embeddings", use_one_hot_embeddings=False):
    """Looks up int32 [B, S] (or [B, S, 1]) input_ids in a [V, E] table.

    Returns:
      (output, embedding_table): float32 [B, S, E] and the table variable
      `word_embedding_name`. use_one_hot_embeddings uses a one-hot matmul (TPU).
    """
    ids_shape = get_shape_list(input_ids)
    if len(ids_shape) == 3:
        ids_shape = ids_shape[:2]
    embedding_table = tf.get_variable(
        name=word_embedding_name, shape=[vocab_size, embedding_size],
        initializer=create_initializer(initializer_range))
    flat_ids = tf.reshape(input_ids, [-1])
    if use_one_hot_embeddings:
        one_hot_ids = tf.one_hot(flat_ids, depth=vocab_size)
        output = tf.matmul(one_hot_ids, embedding_table)
    else:
        output = tf.gather(embedding_table, flat_ids)
    output = tf.reshape(output, ids_shape + [embedding_size])
    return (output, embedding_table)


def embedding_postprocessor(input_tensor, use_token_type=False, token_type_ids=None,
                            token_type_vocab_size=16,
                            token_type_embedding_name="token_type_embeddings",
                            use_position_embeddings=True,
                            position_embedding_name="position_embeddings",
                            initializer_range=0.02, max_position_embeddings=512,
                            dropout_prob=0.1):
    """Adds token type and position embeddings to [B, S, E]; layer norm and dropout.

    Args:
      input_tensor: float32 [B, S, E] word embeddings.
      use_token_type: add embeddings of token_type_ids, int32 [B, S], from a
        [token_type_vocab_size, E] table named token_type_embedding_name.
      use_position_embeddings: add learned absolute position embeddings from a
        [max_position_embeddings, E] table named position_embedding_name (S must
        not exceed max_position_embeddings).
      initializer_range: stddev of the table initializers.
      dropout_prob: dropout after the layer norm.

    Returns:
      float32 [B, S, E].
    """
    batch_size, seq_length, width = get_shape_list(input_tensor, expected_rank=3)
    output = input_tensor
    if use_token_type:
        if token_type_ids is None:
            raise ValueError("use_token_type needs token_type_ids")
        type_table = tf.get_variable(
            name=token_type_embedding_name, shape=[token_type_vocab_size, width],
            initializer=create_initializer(initializer_range))
        # The type vocabulary is tiny, so a one-hot matmul is the fast lookup.
        one_hot_ids = tf.one_hot(tf.reshape(token_type_ids, [-1]), depth=token_type_vocab_size)
        type_embeddings = tf.matmul(one_hot_ids, type_table)
        output += tf.reshape(type_embeddings, [batch_size, seq_length, width])

    if use_position_embeddings:
        if isinstance(seq_length, int) and seq_length > max_position_embeddings:
            raise ValueError("sequence length %d is above max_position_embeddings %d"
                             % (seq_length, max_position_embeddings))
        check = tf.assert_less_equal(seq_length, max_position_embeddings)
        with tf.control_dependencies([check]):
            position_table = tf.get_variable(
                name=position_embedding_name, shape=[max_position_embeddings, width],
                initializer=create_initializer(initializer_range))
            # Positions 0..S-1 are the first S rows; broadcast over the batch.
            positions = tf.slice(position_table, [0, 0], [seq_length, -1])
            output += tf.expand_dims(positions, 0)

    return layer_norm_and_dropout(output, dropout_prob)


def create_attention_mask_from_input_mask(from_tensor, to_mask):
    """float32 [B, F, T] mask, mask[b, f, t] = to_mask[b, t], from a [B, F, ...]
    from_tensor (only its first two dimensions are used) and an int32 [B, T] to_mask
    (1 for positions that may be attended to)."""
    from_shape = get_shape_list(from_tensor, expected_rank=[2, 3])
    to_shape = get_shape_list(to_mask, expected_rank=2)
    to_mask = tf.cast(tf.reshape(to_mask, [to_shape[0], 1, to_shape[1]]), tf.float32)
    ones = tf.ones(shape=[from_shape[0], from_shape[1], 1], dtype=tf.float32)
    return ones * to_mask


def _split_heads(tensor, batch_size, seq_length, num_heads, head_size):
    """[B*S, N*D] -> [B, N, S, D]."""
    tensor = tf.reshape(tensor, [batch_size, seq_length, num_heads, head_size])
    return tf.transpose(tensor, [0, 2, 1, 3])


def attention_layer(from_tensor, to_tensor, attention_mask=None, num_attention_heads=1,
                    size_per_head=512, query_act=None, key_act=None, value_act=None,
                    attention_probs_dropout_prob=0.0, initializer_range=0.02,
                    do_return_2d_tensor=False, batch_size=None, from_seq_length=None,
                    to_seq_length=None):
    """Multi-headed scaled dot-product attention from from_tensor to to_tensor.

    Creates variables query/, key/ and value/ ({kernel, bias}) in the current scope.

    Args:
      from_tensor: [B, F, W_from], or [B*F, W_from] with batch_size and from_seq_length.
      to_tensor: [B, T, W_to], or [B*T, W_to] with batch_size and to_seq_length.
      attention_mask: optional [B, F, T] of 1 (attend) / 0 (masked) values.
      num_attention_heads: N; size_per_head: D.
      query_act, key_act, value_act: optional activations of the projections.
      attention_probs_dropout_prob: dropout on the attention probabilities.
      do_return_2d_tensor: return [B*F, N*D] instead of [B, F, N*D].

    Returns:
      [B, F, N*D] (or [B*F, N*D]) context, in the dtype of from_tensor.
    """
    from_shape = get_shape_list(from_tensor, expected_rank=[2, 3])
    to_shape = get_shape_list(to_tensor, expected_rank=[2, 3])
    if len(from_shape) != len(to_shape):
        raise ValueError("from_tensor has rank %d but to_tensor has rank %d"
                         % (len(from_shape), len(to_shape)))
    if len(from_shape) == 3:
        batch_size, from_seq_length, to_seq_length = from_shape[0], from_shape[1], to_shape[1]
    elif batch_size is None or from_seq_length is None or to_seq_length is None:
        raise ValueError("matrix inputs need batch_size, from_seq_length and to_seq_length")

    from_2d = reshape_to_matrix(from_tensor)
    to_2d = reshape_to_matrix(to_tensor)
    width = num_attention_heads * size_per_head

    def project(tensor, name, act):
        return dense_layer(tensor, width, name=name, activation=act,
                           initializer_range=initializer_range)

    query = project(from_2d, "query", query_act)  # [B*F, N*D]
    key = project(to_2d, "key", key_act)  # [B*T, N*D]
    value = project(to_2d, "value", value_act)  # [B*T, N*D]

    query = _split_heads(query, batch_size, from_seq_length, num_attention_heads, size_per_head)
    key = _split_heads(key, batch_size, to_seq_length, num_attention_heads, size_per_head)
    scores = tf.matmul(query, key, transpose_b=True)  # [B, N, F, T]
    scores = scores * (1.0 / math.sqrt(float(size_per_head)))

    if attention_mask is not None:
        # 0.0 where attending is allowed, -10000.0 where masked: softmax sends it to ~0.
        adder = (1.0 - tf.cast(tf.expand_dims(attention_mask, axis=1), tf.float32)) * -10000.0
        scores += cast(adder, scores.dtype)

    probs = tf.nn.softmax(scores)
    probs = dropout(probs, attention_probs_dropout_prob)

    value = _split_heads(value, batch_size, to_seq_length, num_attention_heads, size_per_head)
    context = tf.matmul(probs, value)  # [B, N, F, D]
    context = tf.transpose(context, [0, 2, 1, 3])  # [B, F, N, D]
    if do_return_2d_tensor:
        return tf.reshape(context, [batch_size * from_seq_length, width])
    return tf.reshape(context, [batch_size, from_seq_length, width])


def transformer_model(input_tensor, attention_mask=None, hidden_size=768,
                      num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                      intermediate_act_fn=gelu, hidden_dropout_prob=0.1,
                      attention_probs_dropout_prob=0.1, initializer_range=0.02,
                      do_return_all_layers=False, first_token_last_layer=False):
    """Multi-layer bidirectional Transformer encoder ("Attention is All You Need").

    Layer variables live under layer_<i>/ in the current scope. The computation keeps
    activations as [B*S, H] matrices and uses the input's dtype throughout.

    Args:
      input_tensor: [B, S, H].
      attention_mask: optional [B, S, S], 1 for allowed and 0 for masked positions.
      hidden_size: H, a multiple of num_attention_heads.
      intermediate_size: width of the feed-forward layer (intermediate_act_fn).
      hidden_dropout_prob: dropout on the sub-layer outputs.
      attention_probs_dropout_prob: dropout on the attention probabilities.
      do_return_all_layers: return the list of every layer's output.
      first_token_last_layer: the last layer's queries, feed-forward and output are of
        the first position alone (its keys and values of all S); that layer is [B, 1, H].

    Returns:
      [B, S, H] final layer, or a list of num_hidden_layers such tensors.
    """
    if hidden_size % num_attention_heads != 0:
        raise ValueError("hidden_size %d is not divisible by num_attention_heads %d"
                         % (hidden_size, num_attention_heads))
    head_size = hidden_size // num_attention_heads
    input_shape = get_shape_list(input_tensor, expected_rank=3)
    batch_size, seq_length, input_width = input_shape
    if input_width != hidden_size:
        raise ValueError("input width %d differs from hidden_size %d (residuals need equal "
                         "widths)" % (input_width, hidden_size))

    layer_input = reshape_to_matrix(input_tensor)  # [B*S, H]
    all_layer_outputs = []
    for layer_idx in range(num_hidden_layers):
        from_input, from_length, from_mask = layer_input, seq_length, attention_mask
        if first_token_last_layer and layer_idx == num_hidden_layers - 1:
            from_input = tf.reshape(layer_input, input_shape)[:, 0, :]  # [B, H]
            from_length = 1
            from_mask = None if attention_mask is None else attention_mask[:, 0:1, :]
        with tf.variable_scope("layer_%d" % layer_idx):
            with tf.variable_scope("attention"):
                with tf.variable_scope("self"):
                    attention = attention_layer(
                        from_input, layer_input, from_mask,
                        num_attention_heads=num_attention_heads, size_per_head=head_size,
                        attention_probs_dropout_prob=attention_probs_dropout_prob,
                        initializer_range=initializer_range, do_return_2d_tensor=True,
                        batch_size=batch_size, from_seq_length=from_length,
                        to_seq_length=seq_length)
                with tf.variable_scope("output"):
                    attention = dense_layer(attention, hidden_size, name="dense",
                                            initializer_range=initializer_range)
                    attention = dropout(attention, hidden_dropout_prob)
                    attention = layer_norm(attention + from_input)
            with tf.variable_scope("intermediate"):
                intermediate = dense_layer(attention, intermediate_size, name="dense",
                                           activation=intermediate_act_fn,
                                           initializer_range=initializer_range)
            with tf.variable_scope("output"):
                layer_output = dense_layer(intermediate, hidden_size, name="dense",
                                           initializer_range=initializer_range)
                layer_output = dropout(layer_output, hidden_dropout_prob)
                layer_output = layer_norm(layer_output + attention)
            layer_input = layer_output
            all_layer_outputs.append(layer_output)

    shapes = [input_shape] * num_hidden_layers
    if first_token_last_layer:
        shapes[-1] = [batch_size, 1, hidden_size]
    if do_return_all_layers:
        return [reshape_from_matrix(out, shape) for out, shape in zip(all_layer_outputs, shapes)]
    return reshape_from_matrix(layer_input, shapes[-1])


def get_shape_list(tensor, expected_rank=None, name=None):
    """The shape of a tensor as a list: ints for static dimensions, scalar tensors else.

    expected_rank (an int or a list of ints) is checked with assert_rank.
    """
    if expected_rank is not None:
        assert_rank(tensor, expected_rank, name)
    shape = tensor.shape.as_list()
    dynamic = None
    for index, dim in enumerate(shape):
        if dim is None:
            if dynamic is None:
                dynamic = tf.shape(tensor)
            shape[index] = dynamic[index]
    return shape


def reshape_to_matrix(input_tensor):
    """[..., W] (rank >= 2) -> [M, W]; a matrix is returned unchanged."""
    ndims = input_tensor.shape.ndims
    if ndims < 2:
        raise ValueError("reshape_to_matrix needs rank >= 2, got shape %s"
                         % (input_tensor.shape,))
    if ndims == 2:
        return input_tensor
    return tf.reshape(input_tensor, [-1, input_tensor.shape.as_list()[-1]])


def reshape_from_matrix(output_tensor, orig_shape_list):
    """[M, W] -> orig_shape_list[:-1] + [W]; unchanged when orig_shape_list has rank 2."""
    if len(orig_shape_list) == 2:
        return output_tensor
    width = get_shape_list(output_tensor)[-1]
    return tf.reshape(output_tensor, list(orig_shape_list[:-1]) + [width])


def assert_rank(tensor, expected_rank, name=None):
    """Raises ValueError unless the tensor's static rank is (one of) expected_rank."""
    if name is None:
        name = tensor.name
    ranks = [expected_rank] if isinstance(expected_rank, int) else expected_rank
    actual_rank = tensor.shape.ndims
    if actual_rank not in ranks:
        raise ValueError("tensor %s (variable scope '%s') has rank %s, shape %s; expected "
                         "rank %s" % (name, tf.get_variable_scope().name, actual_rank,
                                      tensor.shape, expected_rank))


def cast(tensor, dtype):
    """tf.cast, skipped when the tensor already has the dtype."""
    if tensor.dtype.base_dtype == tf.as_dtype(dtype):
        return tensor
    return tf.cast(tensor, dtype)

