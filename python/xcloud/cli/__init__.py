"""The ``xcloud`` command line."""
