"""facevlm: an open, offline-capable face vision-language assistant."""

__version__ = "0.1.0"
