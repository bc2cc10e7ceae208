"""The `prefect-plugboard` command line: run, validate and draw models written in YAML."""

from prefect_plugboard.cli.app import app, main


__all__ = ["app", "main"]
