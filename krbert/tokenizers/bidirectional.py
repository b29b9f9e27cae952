"""KR-BERT's tokenizer modes: BidirectionalWordPiece and sub-character (jamo) input.

BidirectionalWordPiece (KR-BERT, Lee et al. 2020) takes the words of BERT's BasicTokenizer,
as KR-BERT's release does, and splits every word twice with greedy longest-match WordPiece:
forward, from the word's start, as BERT does; and backward, taking the longest vocabulary
piece that ends the remaining text, every piece except the one that starts the word written
with "##". The ids of each candidate's pieces, leaving out ids 0-4 (the five special tokens
at the top of KR-BERT's vocabularies), are sorted, and the candidate whose sorted list
compares smaller wins: in a vocabulary listed by frequency, the split whose most frequent
piece is more frequent. Ties go to the backward split. When either direction cannot split
the word, the word becomes [UNK] (its id is left out, so the failed candidate compares
smaller, or wins the tie).

Sub-character models read text NFKD-decomposed into conjoining jamo; KR-BERT applies the
decomposition to the raw text before any tokenization, and so does ``to_subchar`` here (the
one place the project NFKD-normalises text).

Use through ``tokenization.FullTokenizer(vocab_file, tokenizer="bidirectional", subchar=...)``.
"""

import unicodedata

from krbert.tokenizers.wordpiece import (
    MAX_INPUT_CHARS_PER_WORD,
    UNK_TOKEN,
    WordpieceTokenizer,
    affix_table,
)

SPECIAL_IDS = 5
"""Ids below this ([PAD] [UNK] [CLS] [SEP] [MASK]) do not count when comparing splits."""


def to_subchar(text):
    """`text` decomposed into jamo (NFKD), the form KR-BERT's sub-character models read."""
    return text if text.isascii() else unicodedata.normalize("NFKD", text)


class BidirectionalWordpieceTokenizer(WordpieceTokenizer):
    """Forward and backward greedy WordPiece; the split made of more frequent pieces wins."""

    def __init__(self, vocab, unk_token=UNK_TOKEN,
                 max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD):
        """Args: vocab: token -> id, ids ranked by frequency; unk_token; longest word."""
        WordpieceTokenizer.__init__(self, vocab, unk_token, max_input_chars_per_word)
        self._unk_id = vocab.get(unk_token, -1)
        self._continue_suffixes = affix_table(self._continue_texts, suffixes=True)

    def backward_pieces(self, word):
        """Greedy longest-match pieces of `word` taken from its end, or None if one is missing.

        KR-BERT's release would loop forever on a vocabulary holding the bare token "##";
        here an empty piece never matches.
        """
        pieces, end = [], len(word)
        while end > 0:
            whole = self._starts.get(word[:end])
            if whole:  # what is left of the word is one starting piece
                pieces.append(whole)
                break
            piece, start = None, end
            while start > 1:
                start -= 1
                found = self._continue_suffixes.get(word[start:end])
                if found is None:
                    break  # no continuation ends with word[start:end]
                if found:
                    piece, piece_start = found, start
            if piece is None:
                return None
            pieces.append(piece)
            end = piece_start
        pieces.reverse()
        return pieces

    def _ranks(self, pieces):
        """Sorted ids of `pieces`, special ids left out; a failed split (None) is one [UNK]."""
        ids = [self._unk_id] if pieces is None else [self.vocab[piece] for piece in pieces]
        return sorted(i for i in ids if i >= SPECIAL_IDS)

    def _choose(self, forward, backward):
        """The winning split (None for [UNK]) of two candidates (None when they failed)."""
        if forward == backward:
            return forward
        return forward if self._ranks(forward) < self._ranks(backward) else backward

    def word_pieces(self, word):
        """The pieces of a word of at most max_input_chars_per_word characters, or None."""
        whole = self._starts.get(word)
        if whole:
            return [whole]  # both directions take the whole word first
        return self._choose(self.forward_pieces(word), self.backward_pieces(word))

    def reference_backward(self, word):
        """Backward pieces by the plain search: at each step try every start, leftmost first."""
        pieces, end = [], len(word)
        while end > 0:
            for start in range(0, end):
                piece = word[:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return None
            pieces.insert(0, piece)
            end = start
        return pieces

    def reference_pieces(self, word):
        """word_pieces by the plain forward and backward searches, always compared."""
        forward, backward = self.reference_forward(word), self.reference_backward(word)
        return forward if self._ranks(forward) < self._ranks(backward) else backward
