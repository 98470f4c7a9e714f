"""Who spoke each word, offline: a voice encoder (ONNX) and clustering (scipy)."""
