#!/usr/bin/env bash
# A real editor end to end: headless Neovim (Debian's package, 0.7.x) starts the language
# server with the README's Lua config, rewrites a selection and writes the file; the test
# checks the file on disk. Installs Neovim first if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvim >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq neovim
fi
command -v nvim >/dev/null 2>&1 || { echo "neovim-e2e: nvim is still missing" >&2; exit 1; }
nvim --version | head -n 1

# -rs lists skips: with nvim installed the test must run, not skip.
exec "${PYTHON:-python}" -m pytest tests/e2e/neovim/test_neovim.py -q -rs -p no:cacheprovider "$@"
