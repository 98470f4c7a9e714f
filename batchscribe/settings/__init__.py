"""The settings' parts: the small frozen values each engine and stage is given (parts.py)."""
