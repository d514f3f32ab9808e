"""``python -m hoodwink`` runs the CLI."""

from hoodwink.cli.main import main

main()
