"""The serve layer: `batchscribe serve`, AssemblyAI's and OpenAI's APIs on this machine."""
