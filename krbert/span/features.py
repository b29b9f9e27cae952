"""Span features: examples -> windows of [CLS] question [SEP] context [SEP] (no flags).

``convert_examples_to_features`` makes the features the original BERT ``run_squad.py``
makes for the same examples, tokenizer and settings, in the same order and with the same
unique ids (from 1000000000): the question cut to max_query_length tokens; the context
tokenized word by word, then cut into windows of max_seq_length - len(question) - 3 tokens
that start doc_stride tokens apart (the last window ends at the context's end); a token is
scored only in its "max context" window (the one where min(left, right context) + 0.01 *
window length is largest, the first on ties). A training answer is the token span of its
words, narrowed to the tokens of the answer's text where they match exactly; a window
without the whole answer (or an impossible question) points at [CLS] (0, 0).
``write_features`` writes them as the original's ``FeatureWriter`` does: the same records
with the same fields and values, serialized deterministically (see serialize_feature).

Speed: a paragraph's context is tokenized once for all its questions (the original
tokenizes it per question), and ``num_workers`` processes convert contiguous blocks of
examples; the result and its order do not depend on either.
"""

import collections
import multiprocessing

from krbert import cli
from krbert.estimator import tf_example
from krbert.files import atomic
from krbert.tf_compat import tf

FIRST_UNIQUE_ID = 1000000000

SpanSettings = collections.namedtuple("SpanSettings",
                                      "max_seq_length doc_stride max_query_length")

SpanFeature = collections.namedtuple(
    "SpanFeature", "unique_id example_index doc_span_index tokens token_to_orig_map "
    "token_is_max_context input_ids input_mask segment_ids start_position end_position "
    "is_impossible")
"""One window. tokens: [CLS] question [SEP] context [SEP] (unpadded); token_to_orig_map:
{token position: word index in the context}; token_is_max_context: {token position: bool};
input_ids, input_mask, segment_ids: int lists of max_seq_length; start/end_position: the
answer's token positions (training; 0, 0 when not in the window), None when predicting."""

DocSpan = collections.namedtuple("DocSpan", "start length")


def check_window(max_seq_length, doc_stride, max_query_length):
    """cli.InputError naming --doc_stride or --max_query_length when they leave no
    sensible window in --max_seq_length."""
    if doc_stride >= max_seq_length:
        raise cli.InputError(
            "--doc_stride=%d must be smaller than --max_seq_length=%d (windows start "
            "doc_stride tokens apart; the original uses 128 with 384)"
            % (doc_stride, max_seq_length))
    if max_seq_length <= max_query_length + 3:
        raise cli.InputError(
            "--max_query_length=%d leaves no room for the context in --max_seq_length=%d "
            "([CLS] and two [SEP] take 3); give --max_query_length below %d"
            % (max_query_length, max_seq_length, max_seq_length - 3))


def tokenize_context(words, tokenizer):
    """(tokens, token_to_word, word_to_token): the context's WordPiece tokens, the word of
    every token, and the first token of every word."""
    tokens, token_to_word, word_to_token = [], [], []
    for index, word in enumerate(words):
        word_to_token.append(len(tokens))
        pieces = tokenizer.tokenize(word)
        tokens.extend(pieces)
        token_to_word.extend([index] * len(pieces))
    return tokens, token_to_word, word_to_token


def improve_answer_span(doc_tokens, start, end, tokenizer, answer_text):
    """The narrowest-starting, then widest token span inside [start, end] whose tokens,
    joined by spaces, equal the answer text's tokens; [start, end] when none does."""
    wanted = " ".join(tokenizer.tokenize(answer_text))
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if " ".join(doc_tokens[new_start:new_end + 1]) == wanted:
                return new_start, new_end
    return start, end


def doc_spans(num_tokens, max_tokens_for_doc, doc_stride):
    """The windows over ``num_tokens`` context tokens: DocSpan(start, length) list."""
    spans = []
    start = 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens_for_doc)
        spans.append(DocSpan(start, length))
        if start + length == num_tokens:
            break
        start += min(length, doc_stride)
    return spans


def max_context_windows(spans, num_tokens):
    """For every context token, the index of the window giving it the most context: the
    largest min(tokens left, tokens right) + 0.01 * window length, the first on ties."""
    best_score = [None] * num_tokens
    best = [None] * num_tokens
    for index, span in enumerate(spans):
        end = span.start + span.length - 1
        for position in range(span.start, end + 1):
            score = min(position - span.start, end - position) + 0.01 * span.length
            if best_score[position] is None or score > best_score[position]:
                best_score[position], best[position] = score, index
    return best


def answer_token_span(example, context, tokenizer):
    """(start, end) context token positions of a training example's answer; (-1, -1) when
    impossible."""
    if example.is_impossible:
        return -1, -1
    tokens, _, word_to_token = context
    start = word_to_token[example.start_position]
    if example.end_position < len(example.doc_tokens) - 1:
        end = word_to_token[example.end_position + 1] - 1
    else:
        end = len(tokens) - 1
    return improve_answer_span(tokens, start, end, tokenizer, example.orig_answer_text)


def window_positions(answer, span, query_length, is_impossible):
    """(start_position, end_position) of the answer in one window's tokens: (0, 0) when
    the window lacks the whole answer or the question is impossible."""
    if is_impossible or not (answer[0] >= span.start and
                             answer[1] <= span.start + span.length - 1):
        return 0, 0
    offset = query_length + 2 - span.start
    return answer[0] + offset, answer[1] + offset


def example_features(example_index, example, tokenizer, settings, is_training, context,
                     with_maps=True):
    """The SpanFeatures of one example (unique_id None), one per window.

    context: tokenize_context(example.doc_tokens, tokenizer); with_maps: fill
    token_to_orig_map and token_is_max_context (prediction needs them, the records not).
    """
    query = tokenizer.tokenize(example.question_text)[:settings.max_query_length]
    doc_tokens, token_to_word, _ = context
    answer = answer_token_span(example, context, tokenizer) if is_training else None
    spans = doc_spans(len(doc_tokens), settings.max_seq_length - len(query) - 3,
                      settings.doc_stride)
    head = ["[CLS]"] + query + ["[SEP]"]
    best_window = max_context_windows(spans, len(doc_tokens)) if with_maps else None
    features = []
    for span_index, span in enumerate(spans):
        positions = range(span.start, span.start + span.length)
        tokens = head + doc_tokens[span.start:span.start + span.length] + ["[SEP]"]
        token_to_orig_map = token_is_max_context = None
        if with_maps:
            token_to_orig_map = {len(head) + i: token_to_word[p]
                                 for i, p in enumerate(positions)}
            token_is_max_context = {len(head) + i: best_window[p] == span_index
                                    for i, p in enumerate(positions)}
        padding = [0] * (settings.max_seq_length - len(tokens))
        input_ids = tokenizer.convert_tokens_to_ids(tokens) + padding
        input_mask = [1] * len(tokens) + padding
        segment_ids = [0] * len(head) + [1] * (span.length + 1) + padding
        start = end = None
        if is_training:
            start, end = window_positions(answer, span, len(query), example.is_impossible)
        features.append(SpanFeature(None, example_index, span_index, tokens,
                                    token_to_orig_map, token_is_max_context, input_ids,
                                    input_mask, segment_ids, start, end,
                                    example.is_impossible))
    return features


def context_of(example, tokenizer, contexts):
    """tokenize_context of the example's context, computed once per context: ``contexts``
    is {id(word list): tokenize_context(...)} of one conversion in one process."""
    key = id(example.doc_tokens)
    if key not in contexts:
        contexts[key] = tokenize_context(example.doc_tokens, tokenizer)
    return contexts[key]


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


PLACEHOLDER_ID = _varint(FIRST_UNIQUE_ID)
"""A unique id is the last field of a deterministically serialized record (``unique_ids``
sorts last) and every id from 1000000000 to 2**35 - 1 takes these 5 bytes: records made in
parallel carry this placeholder, replaced by the real id in order."""


def convert_block(examples, first_index, tokenizer, settings, is_training, keep, contexts):
    """[(record bytes with PLACEHOLDER_ID, feature)] of consecutive examples, the first
    being number ``first_index``; the features keep their token lists when ``keep``
    (prediction), else only their indexes; contexts: as context_of."""
    out = []
    for offset, example in enumerate(examples):
        context = context_of(example, tokenizer, contexts)
        for feature in example_features(first_index + offset, example, tokenizer, settings,
                                        is_training, context, with_maps=keep):
            record = serialize_feature(feature._replace(unique_id=FIRST_UNIQUE_ID),
                                       is_training)
            if not keep:
                feature = SpanFeature(None, feature.example_index, feature.doc_span_index,
                                      *([None] * 9))
            out.append((record, feature))
    return out


_WORKER = {}
"""What forked workers convert (set by convert_examples_to_features before the fork, so
the workers inherit it) and, in each worker, its tokenized contexts."""


def _convert_worker_block(bounds):
    job = _WORKER["job"]
    lo, hi = bounds
    return convert_block(job["examples"][lo:hi], lo, job["tokenizer"], job["settings"],
                         job["is_training"], job["keep"], job["contexts"])


def convert_examples_to_features(examples, tokenizer, settings, is_training, num_workers=1,
                                 keep=True, block_size=64):
    """Yields (record, SpanFeature) of every window of ``examples``, in order, with unique
    ids from 1000000000: record is the serialized tf.train.Example (serialize_feature).

    Args:
      examples: list of reading.SquadExample.
      tokenizer: a FullTokenizer (``tokenize``, ``convert_tokens_to_ids``).
      settings: SpanSettings.
      is_training: give start and end positions.
      num_workers: processes converting blocks of examples (1: this process).
      keep: the features keep their tokens and maps (prediction needs them); else they
        hold only unique_id, example_index and doc_span_index.
      block_size: examples per block of work.
    """
    bounds = [(lo, min(lo + block_size, len(examples)))
              for lo in range(0, len(examples), block_size)]
    pool = None
    if num_workers <= 1 or len(bounds) <= 1:
        contexts = {}
        blocks = (convert_block(examples[lo:hi], lo, tokenizer, settings, is_training, keep,
                                contexts) for lo, hi in bounds)
    else:
        _WORKER["job"] = {"examples": examples, "tokenizer": tokenizer, "settings": settings,
                          "is_training": is_training, "keep": keep, "contexts": {}}
        pool = multiprocessing.get_context("fork").Pool(num_workers)
        blocks = pool.imap(_convert_worker_block, bounds)
    unique_id = FIRST_UNIQUE_ID
    try:
        for block in blocks:
            for record, feature in block:
                if not record.endswith(PLACEHOLDER_ID) or unique_id >= 1 << 35:
                    raise RuntimeError("unique id %d does not fit the record layout"
                                       % unique_id)
                yield (record[:-len(PLACEHOLDER_ID)] + _varint(unique_id),
                       feature._replace(unique_id=unique_id))
                unique_id += 1
    finally:
        if pool is not None:
            pool.terminate()
            _WORKER.clear()


def serialize_feature(feature, is_training):
    """The tf.train.Example bytes of a feature: the original's fields and values, serialized
    deterministically (map keys sorted). The original's bytes list the map's fields in an
    order that changes from run to run (protobuf's hash map), so two runs of the original
    differ in bytes; this writer's never do."""
    fields = collections.OrderedDict()
    fields["unique_ids"] = tf_example.int64_feature([feature.unique_id])
    fields["input_ids"] = tf_example.int64_feature(feature.input_ids)
    fields["input_mask"] = tf_example.int64_feature(feature.input_mask)
    fields["segment_ids"] = tf_example.int64_feature(feature.segment_ids)
    if is_training:
        fields["start_positions"] = tf_example.int64_feature([feature.start_position])
        fields["end_positions"] = tf_example.int64_feature([feature.end_position])
        fields["is_impossible"] = tf_example.int64_feature([int(bool(feature.is_impossible))])
    example = tf.train.Example(features=tf.train.Features(feature=fields))
    return example.SerializeToString(deterministic=True)


def write_features(path, records, keep=False):
    """Writes the records of convert_examples_to_features (an iterable of (record,
    feature)) to the TFRecord ``path``, whole (a temporary name, then a rename).

    Returns:
      (number written, the features when ``keep``, else None).
    """
    kept = [] if keep else None
    count = 0
    with atomic.atomic_writer(path, tf.io.TFRecordWriter) as writer:
        for record, feature in records:
            writer.write(record)
            count += 1
            if keep:
                kept.append(feature)
    return count, kept
