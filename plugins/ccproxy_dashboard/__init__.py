"""Built-in ccproxy plugin: dashboard."""
