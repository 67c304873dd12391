"""odpctl: the Open vSwitch kernel datapath from Python."""

# Read by `odpctl --version` and by the packaging (pyproject.toml): asking
# importlib.metadata for it costs more than the rest of the version's start-up.
__version__ = "0.1.0"
