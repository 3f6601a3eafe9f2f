"""Built-in ccproxy plugin: logs_api."""
