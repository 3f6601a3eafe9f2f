"""Built-in ccproxy plugin: metrics."""
