"""``python -m exacttransformer``."""

from .cli import main

raise SystemExit(main())
