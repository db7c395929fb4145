"""Layer 1, exact numbers (nothing about transformers): the whitelisted number parser,
certified printing, interval enclosures, the structured engine's numbers, the backends
and matrix helpers.  Imports only :mod:`exacttransformer.errors` from outside."""
