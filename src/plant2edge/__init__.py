"""Local runner and tools for the plant2edge Azure ML components and pipelines."""

__version__ = "0.1.0"
