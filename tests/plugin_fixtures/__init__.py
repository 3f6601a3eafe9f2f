"""Tiny plugins loaded through entry points by the plugin-host tests."""
