"""The survival task kind: one follow-up record per item, its duration and event as the
annotation."""
