// Helpers for the VS Code end-to-end test: code-server in its own process group, a headless
// Chromium driven by playwright-core, and a few workbench gestures (quick open, command
// palette, quick input, notifications, status bar).
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
export const CODE_SERVER = path.join(HERE, 'node_modules', 'code-server', 'out', 'node', 'entry.js');

export function log(...args) {
  const t = new Date().toISOString().slice(11, 23);
  console.log(`[e2e ${t}]`, ...args);
}

export function run(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...options }, (error, stdout, stderr) => {
      if (error) {
        error.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
        reject(error);
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

async function waitForHttp(url, timeoutMs, proc) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`code-server exited (${proc.exitCode ?? proc.signalCode}) before answering`);
    }
    try {
      const res = await fetch(url);
      if (res.ok) {
        return;
      }
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(250);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${last})`);
}

// Without --config, code-server writes a default config (with a password) to ~/.config.
function writeConfig(configFile) {
  fs.writeFileSync(configFile, 'bind-addr: 127.0.0.1:0\nauth: none\ncert: false\n');
}

/** `code-server --install-extension` into the test's own extensions folder. */
export async function installExtension(vsix, { userDataDir, extensionsDir, configFile }) {
  writeConfig(configFile);
  const { stdout } = await run(process.execPath, [
    CODE_SERVER,
    '--config', configFile,
    '--user-data-dir', userDataDir,
    '--extensions-dir', extensionsDir,
    '--install-extension', vsix,
    '--force',
  ]);
  return stdout.trim();
}

/**
 * Starts code-server on 127.0.0.1 with auth off, detached into its own process group (the
 * extension host and the language server it spawns are in that group too). `stop()` ends the
 * whole group: SIGTERM, then SIGKILL for anything left after a grace period.
 */
export async function startCodeServer({ userDataDir, extensionsDir, configFile, logFile, env }) {
  const port = await freePort();
  writeConfig(configFile);
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(
    process.execPath,
    [
      CODE_SERVER,
      '--config', configFile,
      '--bind-addr', `127.0.0.1:${port}`,
      '--auth', 'none',
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--user-data-dir', userDataDir,
      '--extensions-dir', extensionsDir,
    ],
    { detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...env } },
  );
  fs.closeSync(out);
  const pgid = proc.pid;
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    const alive = () => {
      try {
        process.kill(-pgid, 0);
        return true;
      } catch {
        return false;
      }
    };
    if (!alive()) {
      return;
    }
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {
      return;
    }
    for (let i = 0; i < 50 && alive(); i++) {
      await sleep(100);
    }
    if (alive()) {
      log(`process group ${pgid} still alive after SIGTERM; sending SIGKILL`);
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  };
  try {
    await waitForHttp(`${url}/healthz`, 60_000, proc);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, port, pgid, proc, stop };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--no-default-browser-check',
    ],
  });
}

// ---- workbench gestures ------------------------------------------------------------------

export const QUICK_INPUT = '.quick-input-widget';
export const QUICK_INPUT_BOX = '.quick-input-widget .quick-input-box input';

export async function waitForWorkbench(page) {
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 60_000 });
  await page.locator('.statusbar').waitFor({ state: 'visible', timeout: 60_000 });
  // Let the workbench finish restoring (explorer, extension host) before typing.
  await page.locator('.explorer-folders-view, .explorer-viewlet').first()
    .waitFor({ state: 'visible', timeout: 60_000 }).catch(() => {});
}

async function quickInputVisible(page) {
  await page.locator(QUICK_INPUT_BOX).waitFor({ state: 'visible', timeout: 15_000 });
}

/** Runs a command from the command palette by its title. */
export async function runCommand(page, title) {
  await page.keyboard.press('F1');
  await quickInputVisible(page);
  await page.locator(QUICK_INPUT_BOX).fill(`>${title}`);
  const row = page.locator(`${QUICK_INPUT} .quick-input-list .monaco-list-row`, { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await row.click();
}

/** Opens a workspace file with Quick Open. */
export async function openFile(page, name) {
  await page.keyboard.press('Control+P');
  await quickInputVisible(page);
  await page.locator(QUICK_INPUT_BOX).fill(name);
  const row = page.locator(`${QUICK_INPUT} .quick-input-list .monaco-list-row`, { hasText: name }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await page.keyboard.press('Enter');
  await page.locator(`.tab[data-resource-name="${name}"], .tab:has-text("${name}")`).first()
    .waitFor({ state: 'visible', timeout: 15_000 });
  await page.locator('.monaco-editor .view-lines').first().waitFor({ state: 'visible', timeout: 15_000 });
}

/** Selects whole lines `first`..`last` (1-based, inclusive): from column 1 of `first` to column 1 of `last + 1`. */
export async function selectLines(page, first, last) {
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+G');
  await quickInputVisible(page);
  // "Go to Line" is Quick Open with a ':' prefix; keep it
  await page.locator(QUICK_INPUT_BOX).fill(`:${first}`);
  await page.keyboard.press('Enter');
  await page.locator(QUICK_INPUT_BOX).waitFor({ state: 'hidden', timeout: 10_000 });
  await page.keyboard.press('Home');
  await page.keyboard.press('Home'); // twice: the first may stop at the indentation
  for (let i = first; i <= last; i++) {
    await page.keyboard.press('Shift+ArrowDown');
  }
}

/**
 * Sets a number, text or enum setting in the Settings editor, as a user would, and goes back to
 * `fileName`. (Writing settings.json behind code-server's back is not reliably noticed.)
 */
export async function setSetting(page, key, value, fileName, { beforeLeaving = async () => {}, scope = 'User' } = {}) {
  await runCommand(page, 'Preferences: Open Settings (UI)');
  const editor = page.locator('.settings-editor');
  await editor.waitFor({ state: 'visible', timeout: 15_000 });
  // Machine-scoped settings (specedit.pythonPath) live on the "Remote" tab in code-server.
  await editor.locator('.settings-tabs-widget .action-label', { hasText: new RegExp(`^${scope}`) }).first().click();
  const search = editor.locator('.settings-header .suggest-input-container .monaco-editor').first();
  await search.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(key);
  // Wait for the search to narrow the list down to the one setting ("Max New Tokens" for
  // specedit.maxNewTokens), else the first number field of "Commonly Used" gets the value.
  const title = key.split('.').pop().replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase());
  const item = editor.locator('.setting-item-contents', {
    has: page.locator('.setting-item-label', { hasText: new RegExp(`^${title}$`) }),
  }).first();
  await item.waitFor({ state: 'visible', timeout: 15_000 });
  // A text or number field, or the drop-down of an enum (a <select> that VS Code draws over).
  const field = item.locator('input, select').first();
  await field.waitFor({ state: 'visible', timeout: 15_000 });
  if (await field.evaluate((el) => el.tagName === 'SELECT')) {
    await field.selectOption(String(value));
  } else {
    await field.fill(String(value));
    await field.press('Tab'); // commit
  }
  await beforeLeaving();
  await page.locator(`.tab:has-text("${fileName}")`).first().click();
  await page.mouse.move(900, 650); // off the tab, whose hover would sit in later screenshots
  await page.locator('.monaco-editor .view-lines').first().waitFor({ state: 'visible' });
}

/** Types an instruction into the extension's instruction box and accepts it. */
export async function enterInstruction(page, instruction) {
  await quickInputVisible(page);
  const title = page.locator(`${QUICK_INPUT} .quick-input-title`, { hasText: 'Rewrite Selection with Instruction' });
  await title.waitFor({ state: 'visible', timeout: 15_000 });
  await page.locator(QUICK_INPUT_BOX).fill(instruction);
  const row = page.locator(`${QUICK_INPUT} .quick-input-list .monaco-list-row`, { hasText: instruction }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  await page.keyboard.press('Enter');
  await page.locator(QUICK_INPUT_BOX).waitFor({ state: 'hidden', timeout: 10_000 });
}

/** The status-bar item of the extension, found by its accessibility label. */
export function statusItem(page) {
  return page.locator('.statusbar [aria-label^="Speculative Edits:"]').first();
}

export async function statusLabel(page) {
  return (await statusItem(page).getAttribute('aria-label', { timeout: 5_000 }).catch(() => null)) ?? '';
}

/** Waits until the status item's label matches `re`; returns the label. */
export async function waitForStatus(page, re, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  let label = '';
  while (Date.now() < deadline) {
    label = await statusLabel(page);
    if (re.test(label)) {
      return label;
    }
    await sleep(200);
  }
  throw new Error(`status bar never matched ${re} within ${timeoutMs} ms; last: "${label}"`);
}

export async function isDirty(page, name) {
  return (await page.locator(`.tab.dirty:has-text("${name}")`).count()) > 0;
}

export async function screenshot(page, dir, name) {
  const file = path.join(dir, name);
  await page.screenshot({ path: file });
  log(`screenshot ${path.relative(REPO, file)}`);
  return file;
}

/** Copies every log file under `from` whose name matches `re` into `to`. */
export function copyLogs(from, to, re) {
  if (!fs.existsSync(from)) {
    return [];
  }
  const copied = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(p);
      } else if (re.test(entry.name)) {
        fs.mkdirSync(to, { recursive: true });
        const dest = path.join(to, entry.name.replace(/[^\w.-]+/g, '_'));
        fs.copyFileSync(p, dest);
        copied.push(dest);
      }
    }
  };
  walk(from);
  return copied;
}

/** Concatenated text of the log files under `dir` whose names match `re`. */
export function readLogs(dir, re) {
  let text = '';
  const walk = (d) => {
    if (!fs.existsSync(d)) {
      return;
    }
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) {
        walk(p);
      } else if (re.test(entry.name)) {
        text += fs.readFileSync(p, 'utf8');
      }
    }
  };
  walk(dir);
  return text;
}

export async function waitFor(predicate, what, timeoutMs, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await predicate();
    if (value) {
      return value;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
