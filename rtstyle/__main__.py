"""``python -m rtstyle`` is the ``rtstyle`` command."""

from .cli import main

raise SystemExit(main())
