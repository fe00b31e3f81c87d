"""The ranking kind's worker side: judgments in, a suspicion ranking of their grades out."""
