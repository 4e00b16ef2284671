"""Layer `tools` (see ARCHITECTURE.md)."""
