"""WordPiece vocabularies: building one with sentencepiece, and its evaluation."""
