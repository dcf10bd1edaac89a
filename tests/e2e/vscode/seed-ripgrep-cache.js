#!/usr/bin/env node
// Seed @vscode/ripgrep's download cache from the system's `rg` so that
// installing code-server works without reaching GitHub.
//
// code-server's postinstall runs `npm install` in lib/vscode, which installs
// @vscode/ripgrep; that package's postinstall (lib/postinstall.js +
// lib/download.js) first looks for
//   <os.tmpdir()>/vscode-ripgrep-cache-<package version>/ripgrep-<release>-<target>.tar.gz
// and, if the file exists, untars it (expecting an `rg` at the top level)
// instead of asking the GitHub API. We build exactly that file from /usr/bin/rg
// (Debian's ripgrep 13.0.0, the same ripgrep release the prebuilt uses).
//
// Usage: node seed-ripgrep-cache.js [path-to-rg]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

// (package version, prebuilt release) pairs used by the code-server versions we pin.
// code-server 4.100.3 -> lib/vscode/npm-shrinkwrap.json -> @vscode/ripgrep 1.15.11,
// whose lib/postinstall.js has VERSION = 'v13.0.0-10'.
const PAIRS = [
  ['1.15.11', 'v13.0.0-10'],
];

function target() {
  const arch = process.env.npm_config_arch || os.arch();
  if (os.platform() !== 'linux') throw new Error('only Linux is supported here');
  if (arch === 'x64') return 'x86_64-unknown-linux-musl';
  if (arch === 'arm64') return 'aarch64-unknown-linux-musl';
  throw new Error(`unsupported arch ${arch}`);
}

const rg = process.argv[2] || '/usr/bin/rg';
if (!fs.existsSync(rg)) {
  console.error(`seed-ripgrep-cache: ${rg} not found (apt-get install ripgrep)`);
  process.exit(1);
}
const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'rg-seed-'));
fs.copyFileSync(rg, path.join(stage, 'rg'));
fs.chmodSync(path.join(stage, 'rg'), 0o755);
for (const [pkgVersion, release] of PAIRS) {
  const dir = path.join(os.tmpdir(), `vscode-ripgrep-cache-${pkgVersion}`);
  fs.mkdirSync(dir, { recursive: true });
  const archive = path.join(dir, `ripgrep-${release}-${target()}.tar.gz`);
  if (fs.existsSync(archive)) {
    console.log(`seed-ripgrep-cache: ${archive} already there`);
    continue;
  }
  execFileSync('tar', ['czf', archive, '-C', stage, 'rg']);
  console.log(`seed-ripgrep-cache: wrote ${archive}`);
}
fs.rmSync(stage, { recursive: true, force: true });
