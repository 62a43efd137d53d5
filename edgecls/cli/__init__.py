"""The command line: `edgecls` (main.py dispatches to one module per command) and `edgecls-bench` (bench.py)."""

from .main import main

__all__ = ["main"]
