"""The local engine: faster-whisper on this machine, the model chosen and fetched once."""
