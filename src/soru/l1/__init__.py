"""Layer `l1` (see ARCHITECTURE.md)."""
