"""Layer `protocol` (see ARCHITECTURE.md)."""
