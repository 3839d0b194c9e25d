"""Training data: synthetic talking heads, prepared video folders, and the meta-learning episode loader."""
