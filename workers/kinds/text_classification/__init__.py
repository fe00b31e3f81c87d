"""Text classification on a worker: texts in, a scored training set out, stored per item."""
