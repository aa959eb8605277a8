"""`python -m labbook` runs the command-line interface."""

from .cli import main

main()
