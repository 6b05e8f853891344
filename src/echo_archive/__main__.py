"""``python -m echo_archive`` runs ``echoctl``."""

from echo_archive.cli import main

main()
