"""A storage plugin whose get_log_store raises."""

from ccproxy_core import hookimpl


@hookimpl(tryfirst=True)
def get_log_store():
    raise RuntimeError("the store's connection pool is closed")
