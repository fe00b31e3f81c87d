"""Assay: influence-guided relabelling of silver datasets."""
