"""The lowest layer: the root error hierarchy and small shared value types."""
