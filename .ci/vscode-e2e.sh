#!/usr/bin/env bash
# The VS Code extension, checked and then driven end to end in a real VS Code:
#   1. installs what is missing: Debian packages (chromium, ripgrep, the headers code-server's
#      native modules build against), npm packages of vscode-extension/ and tests/e2e/vscode/
#      (npm ci, skipped when node_modules matches package-lock.json);
#   2. compiles the extension (tsc, strict), lints it, runs its unit tests, builds the .vsix;
#   3. runs tests/e2e/vscode: code-server 4.100.3 with the .vsix installed, headless Chromium
#      through playwright-core, a small random-weight model; screenshots and logs go to
#      artifacts/vscode-e2e/.
# Exits non-zero if anything fails. Needs the speculative-edits Python package (PYTHON,
# default python3), which the main CI installs; installs it editable if it is missing.
#
#   bash .ci/vscode-e2e.sh                 # 1, 2 and 3
#   bash .ci/vscode-e2e.sh --install-only  # 1 and 2; pytest then runs 3 through
#                                          # tests/e2e/vscode/test_vscode_e2e.py
set -euo pipefail
INSTALL_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --install-only) INSTALL_ONLY=1 ;;
    *) echo "usage: $0 [--install-only]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false

step() { printf '\n== vscode-e2e: %s\n' "$*"; }

# -- 1. installs ---------------------------------------------------------------------------
APT_PACKAGES=(chromium ripgrep libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config build-essential)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" != 20 ]; then
  echo "vscode-e2e: code-server 4.100.x needs Node 20, this is $(node --version)" >&2
  exit 1
fi

# npm ci in $1 unless node_modules was installed from this very package-lock.json.
npm_ci() {
  local dir=$1 stamp="$1/node_modules/.specedit-lock.sha256"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "vscode-e2e: $dir/node_modules is up to date"
    return
  fi
  step "npm ci in $dir"
  (cd "$dir" && npm ci --no-fund --no-audit)
  echo "$want" > "$stamp"
}

npm_ci vscode-extension

# code-server's postinstall runs `npm install` in its lib/vscode, where @vscode/ripgrep's
# postinstall downloads rg from GitHub unless its cache has it: seed that cache from Debian's.
node tests/e2e/vscode/seed-ripgrep-cache.js /usr/bin/rg
# code-server's postinstall insists on these when npm runs as root.
export npm_config_yes=true npm_config_unsafe_perm=true
# Its native modules build with node-gyp, which would download Node's headers: use the local ones.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_version.h ]; then
  export npm_config_nodedir=/usr
fi
npm_ci tests/e2e/vscode
unset npm_config_yes npm_config_unsafe_perm

# The language server must be importable from anywhere (not just from the repo root).
probe='import importlib.util as u, sys; sys.exit(0 if u.find_spec("lsp_server.__main__") and u.find_spec("engine.cli") else 3)'
if ! (cd / && "$PYTHON" -c "$probe"); then
  step "pip install -e . (the speculative-edits package was not importable)"
  if (cd / && "$PYTHON" -c 'import torch, transformers, pygls') 2>/dev/null; then
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e "$ROOT"
  else
    "$PYTHON" -m pip install -q -e "$ROOT"
  fi
  (cd / && "$PYTHON" -c "$probe")
fi

# -- 2. the extension ------------------------------------------------------------------------
step "compile (tsc --strict), lint, unit tests, package"
(
  cd vscode-extension
  npm run --silent compile
  npm run --silent lint
  node --test out/test/
  npm run --silent package >/dev/null
  ls -l speculative-edits.vsix
)

if [ "$INSTALL_ONLY" = 1 ]; then
  echo "vscode-e2e: installed and built; the end-to-end test runs under pytest (tests/e2e/vscode)"
  exit 0
fi

# -- 3. end to end in code-server ------------------------------------------------------------
step "end-to-end test in code-server (artifacts/vscode-e2e/)"
export SPECEDIT_E2E_PYTHON="$PYTHON"
export SPECEDIT_E2E_VSIX="$ROOT/vscode-extension/speculative-edits.vsix"
export SPECEDIT_E2E_ARTIFACTS="$ROOT/artifacts/vscode-e2e"
cd tests/e2e/vscode
exec npm test --silent
