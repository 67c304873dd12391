"""``python -m odpctl``: the odpctl command.

``python -m odpctl docgen [--check]`` regenerates (or checks) the man pages and
completion scripts from the command's tree: a developer's tool, kept out of
the command's own tree (and so out of its man pages and completions).
"""

from __future__ import annotations

import sys

from odpctl.cli import command, main
from odpctl.commands import docgen

if __name__ == "__main__":
    if sys.argv[1:2] == ["docgen"]:
        sys.exit(docgen.main(command(), sys.argv[2:]))
    main()
