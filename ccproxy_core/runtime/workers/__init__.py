"""Serving one port from several processes: N request workers and one hub that runs the plugins.

``supervisor`` binds the port and keeps the workers running; ``hub`` receives their request
events and fires the plugins' request hooks; ``worker_app`` is what a worker serves;
``forward`` passes the paths plugins serve on to the hub; ``channel`` and ``codec`` carry
the events (see docs/deployment.md, "Several workers").
"""
