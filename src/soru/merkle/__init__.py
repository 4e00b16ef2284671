"""Layer `merkle` (see ARCHITECTURE.md)."""
