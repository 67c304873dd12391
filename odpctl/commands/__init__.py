"""The command groups of ``odpctl``: one module per group."""
