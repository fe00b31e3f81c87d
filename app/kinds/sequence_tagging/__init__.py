"""Sequence tagging (named entities): sentences of tokens with labelled spans."""
