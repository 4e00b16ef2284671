"""Layer `pvm` (see ARCHITECTURE.md)."""
