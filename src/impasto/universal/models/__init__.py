"""The decoders shipped with impasto (see docs/universal.md for their card)."""
