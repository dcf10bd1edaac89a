"""`python -m lsp_server [--stdio | --tcp --host H --port N]`."""

import sys

from .cli import main

sys.exit(main())
