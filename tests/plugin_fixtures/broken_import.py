"""A plugin whose import fails."""

raise ImportError("this plugin needs a package that is not installed")
