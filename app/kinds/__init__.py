"""Task kinds: one package per kind of data (its rows, formats and annotations)."""
