"""agents_ui package."""
