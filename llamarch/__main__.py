"""`python -m llamarch`: the same as the `llamarch` command."""

from .cli import main

main()
