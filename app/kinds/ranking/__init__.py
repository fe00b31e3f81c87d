"""Learning to rank: one item per relevance judgment (query, document, grade)."""
