"""Built-in ccproxy plugin: pushgateway."""
