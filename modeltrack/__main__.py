"""``python -m modeltrack``: the CLI."""

from .cli import main

raise SystemExit(main())
