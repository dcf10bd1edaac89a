"""speculative-edits language server: "rewrite selection with instruction" for any LSP editor.

Start it with `specedit serve` or `python -m lsp_server` (stdio); see README.md.
"""

__version__ = "0.1.0"
