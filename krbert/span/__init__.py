"""Span extraction (SQuAD, KorQuAD): features, the model head, answers and their metrics."""
