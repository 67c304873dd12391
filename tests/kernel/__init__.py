"""Tests against the real Open vSwitch kernel datapath; they run inside the
user-mode-linux guest (testbed/uml-run), which tests/run starts."""
