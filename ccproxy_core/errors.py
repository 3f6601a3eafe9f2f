"""Errors that stop ccproxy with one clear line instead of a traceback."""


class CcproxyError(Exception):
    """Base of errors whose message is meant for the user as it is."""


class SettingsError(CcproxyError):
    """A setting has a bad value; the message names the setting, the value and what is allowed."""


class StartupError(CcproxyError):
    """Start-up cannot go on (a plugin cannot open its resources); the message says what to fix."""


class PluginLoadError(CcproxyError):
    """A plugin failed to load or register; the message names the plugin."""
