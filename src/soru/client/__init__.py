"""Layer `client` (see ARCHITECTURE.md)."""
