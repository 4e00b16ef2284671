"""Layer `crypto` (see ARCHITECTURE.md)."""
