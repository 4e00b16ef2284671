"""Layer `encoding` (see ARCHITECTURE.md)."""
