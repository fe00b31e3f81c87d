"""Text classification: one text and one label per item (CSV or JSONL)."""
