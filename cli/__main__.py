"""`python -m procctl.cli`: how the CLI starts a background agent."""

from procctl.cli.app import main

main()
