"""The terminal's own widgets."""
