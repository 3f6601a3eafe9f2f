"""Built-in ccproxy plugin: duckdb."""
