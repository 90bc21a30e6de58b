"""secrets-init: resolve cloud secret references in the environment, then be a good PID 1."""

__version__ = "0.1.0"
