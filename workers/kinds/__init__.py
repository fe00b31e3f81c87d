"""The worker side of each task kind: how it trains, scores and stores (one package each)."""
