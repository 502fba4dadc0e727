"""Signal processing: pure functions over numpy arrays and torch tensors."""
