"""Deduplication: exact sentences within a document, exact documents across the corpus
(a compact table of 64-bit hashes), and optionally near-duplicate documents (MinHash LSH
from datasketch).

Memory: the document table holds 8 bytes per slot and stays at most half full, so it takes
16-32 bytes per distinct document kept: 10 million documents (a 12 GB corpus of 1.2 KB
documents) fit in 320 MB. It is the only state that grows with the corpus. Two different
documents share a 64-bit hash with probability about n^2 / 2^65 (n = 10^7: 3 in a million).
The MinHash index keeps ``num_perm`` 8-byte values per document plus its band keys: meant
for corpora of a few million documents.
"""

import hashlib

import numpy as np

NGRAM = 5
"""Near-duplicates compare sets of character 5-grams (spaces removed)."""


def text_hash(text):
    """A 64-bit hash (int, never 0) of a str, stable across processes and runs."""
    value = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(),
                           "little")
    return value or 1


def unique_sentences(sentences, counts):
    """The sentences with later exact repeats within the document removed (counted)."""
    seen, kept = set(), []
    for sentence in sentences:
        if sentence in seen:
            counts["duplicate_sentences_in_document"] += 1
            continue
        seen.add(sentence)
        kept.append(sentence)
    return kept


def document_hash(sentences):
    """The 64-bit hash of a document (its sentences, one a line)."""
    return text_hash("\n".join(sentences))


class HashSet64(object):
    """A set of 64-bit ints (never 0) in one numpy array: open addressing, linear probing,
    doubled when half full."""

    def __init__(self, capacity=1 << 16):
        size = 1
        while size < 2 * capacity:
            size <<= 1
        self.table = np.zeros(size, dtype=np.uint64)
        self.count = 0

    def __len__(self):
        return self.count

    def add(self, value):
        """Adds ``value``; True when it was not in the set yet."""
        table, mask = self.table, len(self.table) - 1
        slot = value & mask
        value = np.uint64(value)
        while True:
            held = table[slot]
            if held == 0:
                break
            if held == value:
                return False
            slot = (slot + 1) & mask
        table[slot] = value
        self.count += 1
        if 2 * self.count > len(table):
            self._grow()
        return True

    def _grow(self):
        old = self.table[self.table != 0]
        self.table = np.zeros(2 * len(self.table), dtype=np.uint64)
        self.count = 0
        for value in old.tolist():
            self.add(value)

    @property
    def nbytes(self):
        return self.table.nbytes


def shingles(sentences):
    """The set of character NGRAMs of a document, spaces removed (encoded as UTF-8)."""
    text = "".join("".join(sentences).split())
    if len(text) <= NGRAM:
        return {text.encode("utf-8")}
    return {text[i:i + NGRAM].encode("utf-8") for i in range(len(text) - NGRAM + 1)}


def minhash(sentences, num_perm):
    """The datasketch MinHash signature of a document's shingles (a LeanMinHash: its
    values and seed only, small to pass between processes)."""
    from datasketch import LeanMinHash, MinHash

    signature = MinHash(num_perm=num_perm, seed=1)
    signature.update_batch(list(shingles(sentences)))
    return LeanMinHash(signature)


class NearDuplicates(object):
    """MinHash LSH over documents: ``is_new(signature)`` is False for a document that shares
    a band of its signature with an earlier one (the bands are chosen for ``threshold``, an
    estimated Jaccard similarity)."""

    def __init__(self, threshold, num_perm):
        from datasketch import MinHashLSH

        self.threshold, self.num_perm = threshold, num_perm
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self.count = 0

    def is_new(self, signature):
        if self.lsh.query(signature):
            return False
        self.lsh.insert(self.count, signature, check_duplication=False)
        self.count += 1
        return True
