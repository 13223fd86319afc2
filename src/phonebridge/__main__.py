"""`python -m phonebridge` runs the CLI."""

from phonebridge.cli.main import main

raise SystemExit(main())
