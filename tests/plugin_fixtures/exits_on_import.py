"""A plugin whose import calls sys.exit(), as a script's main guard forgotten at module level would."""

import sys

sys.exit("usage: run me as a script")
