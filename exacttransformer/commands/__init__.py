"""One module per sub-command; each has ``add_parser(subparsers)`` and ``run(args) -> int``.

Layer: the edge.  :mod:`exacttransformer.cli` lists them in ``COMMANDS``; a module is
imported only when its command runs, so ``walkthrough cat`` stays cheap.
"""
