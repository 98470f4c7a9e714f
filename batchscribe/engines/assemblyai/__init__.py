"""The AssemblyAI engine: upload, create, poll, over its HTTP API (aiohttp)."""
