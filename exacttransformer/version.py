"""The package's version (the facade's ``__version__``; an answer key names its generator)."""

__version__ = "0.1.0"
