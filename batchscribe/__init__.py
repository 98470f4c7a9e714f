"""batchscribe: transcribe whole folders of recordings, with AssemblyAI or offline."""

__version__ = "0.1.0"
