"""Values an entry point may point at by mistake."""

NOTHING = None
NUMBER = 42
