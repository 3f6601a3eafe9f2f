"""The plugin host: the hook contract, loading and enabling plugins, their settings, calling hooks."""
