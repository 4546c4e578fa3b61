"""`python -m jaxsoft ...` runs the command-line interface."""

from jaxsoft.cli import main

raise SystemExit(main())
