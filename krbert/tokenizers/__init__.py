"""Tokenizers below FullTokenizer: BERT's WordPiece and basic tokenizer, KR-BERT's
bidirectional WordPiece and sub-character mode, and the C implementation (csrc/).
"""
