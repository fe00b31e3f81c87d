"""Sequence tagging on a worker: sentences in, segment influence per candidate span out."""
