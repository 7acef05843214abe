"""The local pipeline runner by concept; ``plant2edge.runner`` is the entry point."""
