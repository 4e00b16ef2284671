"""Layer `node` (see ARCHITECTURE.md)."""
