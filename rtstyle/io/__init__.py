"""File and device input/output. ``files`` is a leaf any layer may import."""
