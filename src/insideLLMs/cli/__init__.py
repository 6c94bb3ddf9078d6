"""The ``insidellms`` command-line interface (one module per command group)."""
