"""Layer 4, files: TOML walkthroughs in (:mod:`~exacttransformer.io.files`), outputs written
whole (:mod:`~exacttransformer.io.output`)."""
