"""The version of modeltrack (one place; the package root and the faces read it)."""

__version__ = "0.1.0"
