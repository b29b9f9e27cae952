"""Masked-LM and next-sentence instances, drawn exactly as BERT's create_pretraining_data.py.

This module holds the algorithm only (no TensorFlow, no file access). The workers that read
the text and write the files are pipeline.py's; the bytes of each
example are records.py's.

For one input file and one seed it reproduces the original release instance for instance:
every value comes from the same ``random.Random(seed)`` draws, in the same order:

1. the documents are shuffled (``rng.shuffle`` of the document list);
2. ``dupe_factor`` times, for every document in shuffled order: the target length
   (``random() < short_seq_prob`` then ``randint(2, max_num_tokens)``), and per chunk of
   sentences the end of segment A (``randint``), random-next (``random() < 0.5``, forced when
   the chunk has one sentence), the random document (up to ten ``randint`` until it differs
   from the current one) and its first sentence, the truncation side (``random() < 0.5``
   per removed token), the shuffle of the masking candidates and, per masked position, the
   80/10/10 choice (``random() < 0.8``, ``random() < 0.5``, ``randint`` over the vocabulary);
3. the instances are shuffled once more (``rng.shuffle`` of the whole list).

Its quirks are kept: a blank line ends a document, a line without tokens is skipped, the
"put back" of unused sentences after a random next, ties in truncation cut segment B,
and with whole-word masking a "##" piece that opens segment B joins the last word of A.

What differs is the representation. Text is tokenized once into one flat array of token
ids (sentences and documents are offsets into it), segments are ranges of that array, and
an instance is a fixed-size row of ints (its two ranges, its label and its masked positions
with their replacements). So a shard of N tokens and M instances takes about
4 N + 4 (6 + 2 P) M bytes (P = max_predictions_per_seq), instead of Python lists of
strings for every instance. ``records.ExampleEncoder`` then writes the
tf.train.Example bytes directly: the same bytes as
``Example.SerializeToString(deterministic=True)``, i.e. the original's examples with their
feature map in sorted key order.
"""

import array

from krbert.pretraining import records

_HEADER = 6
"""Ints before the masked positions in an instance row: a_lo, a_hi, b_lo, b_hi,
is_random_next, number of masked positions."""

KEEP = -1
"""Replacement that keeps the original token (the "10% unchanged" case)."""

ROWS_PER_BLOCK = 8192
"""Instance rows per array block (about 1.5 MB with 20 predictions)."""


class Corpus(object):
    """The documents of one input file as token ids.

    Attributes:
      tokens: array of every token id, sentence after sentence.
      sentence_starts: offsets into ``tokens``; sentence s is
        tokens[sentence_starts[s]:sentence_starts[s + 1]].
      document_starts: sentence indexes; document d is the sentences
        document_starts[d] .. document_starts[d + 1] - 1. Only non-empty documents.
      lines: lines read; invalid_lines: lines whose bytes were not valid UTF-8.
    """

    def __init__(self):
        self.tokens = array.array("i")
        self.sentence_starts = array.array("q", [0])
        self.document_starts = array.array("q", [0])
        self.lines = 0
        self.invalid_lines = 0

    @property
    def num_documents(self):
        return len(self.document_starts) - 1

    def add_line(self, line, ids_of):
        """Adds one line of text: a blank line ends the document, others become a sentence.

        ``ids_of(text)`` returns the token ids of a stripped, non-blank line. As in the
        original, a line whose tokenization is empty adds nothing (and ends nothing).
        """
        self.lines += 1
        line = line.strip()
        if not line:
            self.end_document()
            return
        ids = ids_of(line)
        if ids:
            self.tokens.extend(ids)
            self.sentence_starts.append(len(self.tokens))

    def end_document(self):
        """Closes the current document if it has a sentence (empty documents are dropped)."""
        num_sentences = len(self.sentence_starts) - 1
        if num_sentences > self.document_starts[-1]:
            self.document_starts.append(num_sentences)


def decode_line(raw, corpus):
    """UTF-8 bytes -> str; invalid bytes become U+FFFD and are counted in ``corpus``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        corpus.invalid_lines += 1
        return raw.decode("utf-8", "replace")


class Vocabulary(object):
    """What the algorithm needs from a tokenizer's vocabulary, as ids.

    Args:
      vocab: OrderedDict token -> id, as ``tokenization.FullTokenizer.vocab``.
    Raises:
      KeyError naming a special token the vocabulary lacks.
    """

    def __init__(self, vocab):
        for token in ("[CLS]", "[SEP]", "[MASK]"):
            if token not in vocab:
                raise KeyError(token)
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.mask_id = vocab["[MASK]"]
        # The original draws vocab_words[randint(0, len - 1)] with vocab_words = the keys in
        # file order, then looks the word up again: the same id unless a token is repeated.
        self.random_ids = array.array("i", [vocab[token] for token in vocab])
        self.size = max(vocab.values()) + 1
        self.continues_word = bytearray(self.size)
        for token, index in vocab.items():
            if token.startswith("##"):
                self.continues_word[index] = 1


class Options(object):
    """The generation flags of the original script."""

    def __init__(self, max_seq_length=128, max_predictions_per_seq=20, dupe_factor=10,
                 masked_lm_prob=0.15, short_seq_prob=0.1, do_whole_word_mask=False):
        self.max_seq_length = max_seq_length
        self.max_predictions_per_seq = max_predictions_per_seq
        self.dupe_factor = dupe_factor
        self.masked_lm_prob = masked_lm_prob
        self.short_seq_prob = short_seq_prob
        self.do_whole_word_mask = do_whole_word_mask

    def check(self):
        """Returns a message for the first invalid setting, or None."""
        if self.max_seq_length < 5:
            return "--max_seq_length=%d is too small; it must be at least 5" % self.max_seq_length
        if self.max_predictions_per_seq < 0:
            return "--max_predictions_per_seq must not be negative"
        if self.dupe_factor < 1:
            return "--dupe_factor must be at least 1"
        if not 0.0 <= self.masked_lm_prob <= 1.0 or not 0.0 <= self.short_seq_prob <= 1.0:
            return "--masked_lm_prob and --short_seq_prob must lie between 0 and 1"
        return None


def _shuffle(items, getrandbits):
    """``random.shuffle(items)`` with the same draws, in place.

    Python 3's shuffle swaps items[i] with items[_randbelow(i + 1)] for i from the end down
    to 1, and _randbelow(n) draws getrandbits(n.bit_length()) until the value is below n.
    The loop runs in blocks of equal bit length to keep the per-item work small.
    """
    i = len(items) - 1
    while i > 0:
        k = (i + 1).bit_length()
        low = (1 << (k - 1)) - 1 if k > 1 else 1
        for i in range(i, low - 1, -1):
            j = getrandbits(k)
            while j > i:
                j = getrandbits(k)
            items[i], items[j] = items[j], items[i]
        i = low - 1


def _randbelow(n, getrandbits):
    """``rng._randbelow(n)``: what ``randint(a, a + n - 1) - a`` draws."""
    k = n.bit_length()
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r


class InstanceMaker(object):
    """Draws the instances of one corpus into rows of ints (see ``row``).

    Rows are kept in blocks of ROWS_PER_BLOCK, so growing never copies a large array.

    Args:
      corpus: a Corpus; vocabulary: a Vocabulary; options: Options; rng: random.Random
        seeded with --random_seed, used for nothing else.
    """

    def __init__(self, corpus, vocabulary, options, rng):
        self.corpus = corpus
        self.vocabulary = vocabulary
        self.options = options
        self.rng = rng
        self.row_size = _HEADER + 2 * options.max_predictions_per_seq
        # Rows hold token offsets: 32-bit ints unless the shard has 2**31 tokens or more.
        self._typecode = "i" if len(corpus.tokens) < 1 << 31 else "q"
        self._blocks = [array.array(self._typecode)]
        self._block_ints = ROWS_PER_BLOCK * self.row_size
        self.num_instances = 0
        max_len = options.max_seq_length
        self._num_to_predict = [
            min(options.max_predictions_per_seq, max(1, int(round(n * options.masked_lm_prob))))
            for n in range(max_len + 1)]
        self._padding = [0] * (2 * options.max_predictions_per_seq)
        # Text tokens equal to [CLS] or [SEP] are never masked: check the slow way if any.
        tokens = corpus.tokens
        self._plain = vocabulary.cls_id not in tokens and vocabulary.sep_id not in tokens
        self.order = list(range(corpus.num_documents))
        _shuffle(self.order, rng.getrandbits)

    def row(self, index):
        """Instance `index` (in drawing order) as an array: a_lo, a_hi, b_lo, b_hi (its
        segments A and B as ranges of corpus.tokens), is_random_next, the number of masked
        positions m, then max_predictions_per_seq positions (m used, sorted) and as many
        replacement ids (m used; KEEP keeps the token)."""
        block = self._blocks[index // ROWS_PER_BLOCK]
        start = (index % ROWS_PER_BLOCK) * self.row_size
        return block[start:start + self.row_size]

    def all_rounds(self, progress=None):
        """Runs the dupe_factor rounds over every document; calls progress(docs) now and then."""
        for _ in range(self.options.dupe_factor):
            for start in range(0, len(self.order), 64):
                for position in range(start, min(start + 64, len(self.order))):
                    self.document(position)
                if progress is not None:
                    progress(min(64, len(self.order) - start))

    def final_order(self):
        """The original's last ``rng.shuffle(instances)``, as a list of row numbers."""
        order = list(range(self.num_instances))
        _shuffle(order, self.rng.getrandbits)
        return order

    def document(self, position):
        """Appends the instances of the document at `position` in the shuffled order."""
        rng_random = self.rng.random
        getrandbits = self.rng.getrandbits
        starts = self.corpus.sentence_starts
        doc_starts = self.corpus.document_starts
        order = self.order
        num_docs = len(order)
        max_num_tokens = self.options.max_seq_length - 3

        doc = order[position]
        first, end = doc_starts[doc], doc_starts[doc + 1]
        target_seq_length = max_num_tokens
        if rng_random() < self.options.short_seq_prob:
            target_seq_length = 2 + _randbelow(max_num_tokens - 1, getrandbits)

        chunk_first = first
        current_length = 0
        i = first
        while i < end:
            current_length += starts[i + 1] - starts[i]
            if i == end - 1 or current_length >= target_seq_length:
                chunk_size = i - chunk_first + 1
                a_end = 1
                if chunk_size >= 2:
                    a_end = 1 + _randbelow(chunk_size - 1, getrandbits)
                a_lo, a_hi = starts[chunk_first], starts[chunk_first + a_end]
                if chunk_size == 1 or rng_random() < 0.5:
                    is_random_next = 1
                    target_b_length = target_seq_length - (a_hi - a_lo)
                    for _ in range(10):
                        random_position = _randbelow(num_docs, getrandbits)
                        if random_position != position:
                            break
                    other = order[random_position]
                    other_first, other_end = doc_starts[other], doc_starts[other + 1]
                    j = other_first + _randbelow(other_end - other_first, getrandbits)
                    b_lo, b_hi = starts[j], starts[j + 1]
                    while b_hi - b_lo < target_b_length and j + 1 < other_end:
                        j += 1
                        b_hi = starts[j + 1]
                    i -= chunk_size - a_end  # the unused sentences are "put back"
                else:
                    is_random_next = 0
                    b_lo, b_hi = starts[chunk_first + a_end], starts[i + 1]
                # truncate_seq_pair: cut the longer segment (B on ties), front or back.
                la, lb = a_hi - a_lo, b_hi - b_lo
                while la + lb > max_num_tokens:
                    if la > lb:
                        if rng_random() < 0.5:
                            a_lo += 1
                        else:
                            a_hi -= 1
                        la -= 1
                    else:
                        if rng_random() < 0.5:
                            b_lo += 1
                        else:
                            b_hi -= 1
                        lb -= 1
                self._mask(a_lo, a_hi, b_lo, b_hi, is_random_next)
                chunk_first = i + 1
                current_length = 0
            i += 1

    def _candidates(self, a_lo, a_hi, b_lo, b_hi):
        """The original's cand_indexes: lists of positions in [CLS] A [SEP] B [SEP].

        Text tokens equal to [CLS] or [SEP] are left out. With whole-word masking a "##"
        piece joins the previous list, even across the [SEP] after segment A.
        """
        la = a_hi - a_lo
        vocabulary = self.vocabulary
        specials = (vocabulary.cls_id, vocabulary.sep_id)
        whole_word = self.options.do_whole_word_mask
        continues = vocabulary.continues_word
        tokens = self.corpus.tokens
        groups = []
        for first_position, lo, hi in ((1, a_lo, a_hi), (la + 2, b_lo, b_hi)):
            for offset in range(hi - lo):
                token = tokens[lo + offset]
                if token in specials:
                    continue
                if whole_word and groups and continues[token]:
                    groups[-1].append(first_position + offset)
                else:
                    groups.append([first_position + offset])
        return groups

    def _mask(self, a_lo, a_hi, b_lo, b_hi, is_random_next):
        """create_masked_lm_predictions for one instance; appends its row.

        Per chosen position, in shuffled order: random() < 0.8 -> [MASK]; else
        random() < 0.5 -> KEEP; else the id of vocab_words[randint(0, len - 1)].
        """
        rng_random = self.rng.random
        getrandbits = self.rng.getrandbits
        la, lb = a_hi - a_lo, b_hi - b_lo
        num_to_predict = self._num_to_predict[la + lb + 3]
        if self._plain and not self.options.do_whole_word_mask:
            # One candidate per position: shuffle plain ints, take the first ones.
            cand = list(range(1, la + 1))
            cand.extend(range(la + 2, la + lb + 2))
            _shuffle(cand, getrandbits)
            positions = cand[:num_to_predict]
        else:
            groups = self._candidates(a_lo, a_hi, b_lo, b_hi)
            _shuffle(groups, getrandbits)
            positions = []
            for group in groups:
                if len(positions) >= num_to_predict:
                    break
                if len(positions) + len(group) <= num_to_predict:
                    positions.extend(group)
        mask_id = self.vocabulary.mask_id
        random_ids = self.vocabulary.random_ids
        num_words = len(random_ids)
        bits = num_words.bit_length()
        replacements = []
        for _ in positions:
            if rng_random() < 0.8:
                replacements.append(mask_id)
            elif rng_random() < 0.5:
                replacements.append(KEEP)
            else:
                r = getrandbits(bits)
                while r >= num_words:
                    r = getrandbits(bits)
                replacements.append(random_ids[r])
        count = len(positions)
        padding = self._padding[:self.options.max_predictions_per_seq - count]
        if count > 1:
            chosen = sorted(zip(positions, replacements))
            positions = [index for index, _ in chosen]
            replacements = [replacement for _, replacement in chosen]
        row = [a_lo, a_hi, b_lo, b_hi, is_random_next, count]
        row += positions
        row += padding
        row += replacements
        row += padding
        block = self._blocks[-1]
        if len(block) >= self._block_ints:
            block = array.array(self._typecode)
            self._blocks.append(block)
        block.extend(row)
        self.num_instances += 1


def serialized_examples(maker, order):
    """Yields the tf.train.Example bytes of the maker's instances, in `order`."""
    options = maker.options
    encode = records.ExampleEncoder(
        options.max_seq_length, options.max_predictions_per_seq, maker.vocabulary.size).encode
    tokens, row_of = maker.corpus.tokens, maker.row
    cls_id, sep_id = maker.vocabulary.cls_id, maker.vocabulary.sep_id
    replacements_at = _HEADER + options.max_predictions_per_seq
    for index in order:
        row = row_of(index)
        a_lo, a_hi, b_lo, b_hi, is_random_next, count = row[:_HEADER]
        ids = [cls_id]
        ids += tokens[a_lo:a_hi]
        ids.append(sep_id)
        ids += tokens[b_lo:b_hi]
        ids.append(sep_id)
        positions = row[_HEADER:_HEADER + count]
        labels = [ids[p] for p in positions]
        for p, replacement in zip(positions, row[replacements_at:replacements_at + count]):
            if replacement != KEEP:
                ids[p] = replacement
        yield encode(ids, a_hi - a_lo, b_hi - b_lo, positions, labels, is_random_next)
