"""Layer 3, the named graph: model settings and weights, the nodes built from the steps,
their evaluation into a :class:`~exacttransformer.graph.trace.Trace`, the engine choice
and the independent float reference."""
