"""Layer 2, the pure steps: one module per step family (attention, norm, feed-forward,
positions, tokens, logits, decoding, training, geometry).  Each is a function of values
through a backend; none knows files, printing or the graph."""
