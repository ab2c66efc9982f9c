"""Run the ``klimabot`` command line as ``python -m bot``."""

from bot.cli import main

raise SystemExit(main())
