"""Transcription engines behind one interface (`base.Engine`): AssemblyAI over HTTP and
faster-whisper on this machine. `factory.create_engine` picks one; `confidence` flags what
either returns."""
