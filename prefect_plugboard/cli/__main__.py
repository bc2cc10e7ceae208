"""`python -m prefect_plugboard.cli` runs the command line."""

from prefect_plugboard.cli import main


main()
