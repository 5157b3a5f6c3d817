"""Run marked pytest tests across a matrix of dependency versions."""

__version__ = "0.1.0"
