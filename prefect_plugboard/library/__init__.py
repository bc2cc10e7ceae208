"""Library components ready to use in a graph."""

from prefect_plugboard.library.file_io import FileReader, FileWriter


__all__ = ["FileReader", "FileWriter"]
