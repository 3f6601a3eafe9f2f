"""Run ccproxy with this plugin installed, against the mock provider (fixtures from ccproxy itself)."""

pytest_plugins = ["ccproxy_core.testing.pytest_plugin"]
