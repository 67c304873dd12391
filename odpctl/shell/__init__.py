"""``odpctl shell``, the interactive REPL (prompt-toolkit); its entry is `odpctl.repl`.

``app``        the loop: reading lines, running commands, ``use``, ``help``, ``exit``
``state``      where the datapath is, the current one, cached names
``words``      splitting lines, walking them down the command tree, the current DP
``completer``  completion of commands, options, names and flow text
``flowtext``   completion inside ODP flow keys and actions
``toolbar``    the live bottom toolbar (datapath, flows, hit/miss/lost rates)
"""

from odpctl.shell.app import Shell

__all__ = ["Shell"]
