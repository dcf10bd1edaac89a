// End-to-end test of the Speculative Edits extension in a real VS Code (code-server), driven
// by a headless Chromium through playwright-core.
//
//   1. light-bulb path: select lines 1-2, open the code-action menu, pick "Rewrite selection
//      with instruction…", type an instruction; the rewrite shows up for review (specedit.review
//      is `inline` by default); Accept All (its keybinding), save: the file on disk must equal
//      what the engine's CLI produces for the same lines, instruction and model. One undo
//      then restores the original.
//   2. review of a rewrite with two hunks (the test model repeats one known line, see
//      make_model.py): screenshots mid-stream and in review; accept the first hunk, reject the
//      second: exactly that mix; one undo: the original; again, Reject All: the original.
//   3. cancel path: raise maxNewTokens (a settings change the server must receive), select
//      other lines, run the palette command, type an instruction, press Cancel on the progress
//      notification, and once more with the review's Cancel lens; the server must have been
//      told (window/workDoneProgress/cancel, $/cancelRequest) and nothing may change on disk.
//   3. no server: point specedit.pythonPath at a Python without the package; exactly one
//      message must say so, with the pip command that installs it.
//
// Screenshots and logs go to artifacts/vscode-e2e/ (SPECEDIT_E2E_ARTIFACTS overrides).
// Needs: the built .vsix (npm run package in vscode-extension/), a Python with the
// speculative-edits package (SPECEDIT_E2E_PYTHON, default python3), /usr/bin/chromium.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  copyLogs,
  enterInstruction,
  HERE,
  installExtension,
  isDirty,
  launchBrowser,
  log,
  openFile,
  readLogs,
  REPO,
  run,
  runCommand,
  screenshot,
  selectLines,
  setSetting,
  startCodeServer,
  statusLabel,
  waitFor,
  waitForStatus,
  waitForWorkbench,
} from './harness.mjs';

const VSIX = path.resolve(
  process.env.SPECEDIT_E2E_VSIX || path.join(REPO, 'vscode-extension', 'speculative-edits.vsix'),
);
const ARTIFACTS = path.resolve(process.env.SPECEDIT_E2E_ARTIFACTS || path.join(REPO, 'artifacts', 'vscode-e2e'));
const KEEP = process.env.SPECEDIT_E2E_KEEP === '1';

const FILE_NAME = 'sample.py';
const ORIGINAL = [
  'def add(a, b):',
  '    return a + b',
  '',
  '',
  'def total(values):',
  '    result = 0',
  '    for v in values:',
  '        result = add(result, v)',
  '    return result',
  '',
].join('\n');
const REWRITE = { first: 1, last: 2, instruction: 'Add a docstring to the function' };
// A second file for the review of two hunks: the model writes REPEATED_LINE over and over
// (make_model.py), so lines 2-4 become three copies of it: line 3 stays, 2 and 4 change.
const REVIEW_FILE = 'review.py';
const REVIEW_ORIGINAL = 'def check(value):\n    value = int(value)\n    return None\n    print(value)\n';
const REPEATED_LINE = '    return None\n';
const REVIEWED = { first: 2, last: 4, instruction: 'Return early', file: REVIEW_FILE, original: REVIEW_ORIGINAL };
const CANCELLED = { first: 5, last: 9, instruction: 'Use the built-in sum instead of the loop' };
// Phases 1-2 are kept short (3 lines of 7 tokens); phase 3 must run long enough to be cancelled mid-way.
const SHORT_MAX_NEW_TOKENS = 21;
const LONG_MAX_NEW_TOKENS = 2000;

const ctx = {};

function userSettings() {
  return {
    'specedit.pythonPath': ctx.python,
    'specedit.model': ctx.modelDir,
    'specedit.device': 'cpu',
    'specedit.dtype': 'float32',
    // Greedy, so the long rewrite of phase 3 runs long enough to be cancelled: the test model
    // repeats one line, and speculative edits' n-gram lookup drafts whole copies of it. The
    // text is the same either way (phase 1 compares with the CLI's speculative output).
    'specedit.method': 'greedy',
    'specedit.maxNewTokens': SHORT_MAX_NEW_TOKENS,
    'specedit.contextLines': 0,
    'specedit.trace.server': 'messages',
    // a quiet, predictable workbench
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'extensions.ignoreRecommendations': true,
    'git.enabled': false,
    'files.autoSave': 'off',
    'files.eol': '\n',
    'files.insertFinalNewline': false,
    'files.trimTrailingWhitespace': false,
    'editor.formatOnSave': false,
    'window.restoreWindows': 'none',
    'chat.commandCenter.enabled': false,
  };
}

function writeUserSettings() { // before code-server starts
  const dir = path.join(ctx.userDataDir, 'User');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify(userSettings(), null, 2));
}

function lines(text) {
  return text.split(/(?<=\n)/);
}

/** What the engine's CLI makes of `lines first..last` of the original file (deterministic greedy). */
async function expectedRewrite({ first, last, instruction, file: name = FILE_NAME, original = ORIGINAL }, maxNewTokens) {
  const dir = fs.mkdtempSync(path.join(ctx.tmp, 'cli-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, original);
  const { stdout } = await run(ctx.python, [
    '-m', 'engine.cli', 'rewrite', file,
    '--lines', `${first}-${last}`,
    '--instruction', instruction,
    '--model', ctx.modelDir,
    '--device', 'cpu',
    '--dtype', 'float32',
    '--method', 'speculative',
    '--max-new-tokens', String(maxNewTokens),
    '--context-lines', '0',
    '--json',
  ], { cwd: REPO, timeout: 300_000 });
  const result = JSON.parse(stdout);
  const all = lines(original);
  const region = all.slice(first - 1, last).join('');
  // What the server does with the model's text before editing: a rewrite of whole lines keeps
  // the region's final line ending (else the next line would be glued on). The editor then
  // stores line breaks with the document's EOL (LF here).
  let text = result.text;
  if (region.endsWith('\n') && text !== '' && !/[\r\n]$/.test(text)) {
    text += '\n';
  }
  text = text.replace(/\r\n?/g, '\n');
  return {
    text,
    file: all.slice(0, first - 1).join('') + text + all.slice(last).join(''),
  };
}

before(async () => {
  assert.ok(fs.existsSync(VSIX), `${VSIX} is missing: run \`npm run package\` in vscode-extension/ first`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) {
    if (f.endsWith('.png')) {
      fs.rmSync(path.join(ARTIFACTS, f));
    }
  }
  fs.rmSync(path.join(ARTIFACTS, 'logs'), { recursive: true, force: true });

  ctx.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'specedit-e2e-'));
  ctx.workspace = path.join(ctx.tmp, 'workspace');
  ctx.userDataDir = path.join(ctx.tmp, 'user-data');
  ctx.extensionsDir = path.join(ctx.tmp, 'extensions');
  ctx.configFile = path.join(ctx.tmp, 'code-server.yaml');
  ctx.serverLog = path.join(ctx.tmp, 'code-server.log');
  fs.mkdirSync(ctx.workspace);
  fs.writeFileSync(path.join(ctx.workspace, FILE_NAME), ORIGINAL);
  fs.writeFileSync(path.join(ctx.workspace, REVIEW_FILE), REVIEW_ORIGINAL);
  log(`temp folder ${ctx.tmp}`);

  const py = process.env.SPECEDIT_E2E_PYTHON || 'python3';
  ctx.python = (await run(py, ['-c', 'import sys; print(sys.executable)'])).stdout.trim();
  log(`python ${ctx.python}`);
  ctx.modelDir = (
    await run(ctx.python, ['-m', 'tests.e2e.vscode.make_model', path.join(ctx.tmp, 'model')], { cwd: REPO })
  ).stdout.trim().split('\n').pop();
  log(`model ${ctx.modelDir}`);

  // The expected texts come from the CLI; compute them while code-server starts.
  ctx.expected = expectedRewrite(REWRITE, SHORT_MAX_NEW_TOKENS);
  ctx.expected.catch(() => {}); // awaited (and reported) by the test
  ctx.expectedReview = ctx.expected.then(() => expectedRewrite(REVIEWED, SHORT_MAX_NEW_TOKENS));
  ctx.expectedReview.catch(() => {});

  writeUserSettings();
  const dirs = { userDataDir: ctx.userDataDir, extensionsDir: ctx.extensionsDir, configFile: ctx.configFile };
  log(await installExtension(VSIX, dirs));
  ctx.server = await startCodeServer({ ...dirs, logFile: ctx.serverLog });
  log(`code-server at ${ctx.server.url} (process group ${ctx.server.pgid})`);

  ctx.browser = await launchBrowser();
  ctx.page = await ctx.browser.newPage({ viewport: { width: 1400, height: 900 } });
  ctx.page.setDefaultTimeout(30_000);
  await ctx.page.goto(`${ctx.server.url}/?folder=${encodeURIComponent(ctx.workspace)}`);
  await waitForWorkbench(ctx.page);
  log('workbench is up');
});

after(async () => {
  if (ctx.page) {
    await screenshot(ctx.page, ARTIFACTS, '99-final.png').catch(() => {});
  }
  await ctx.browser?.close().catch(() => {});
  await ctx.server?.stop();
  if (ctx.server) {
    // nothing of the group may survive: code-server, extension host, language server
    let alive = true;
    try {
      process.kill(-ctx.server.pgid, 0);
    } catch {
      alive = false;
    }
    assert.equal(alive, false, `process group ${ctx.server.pgid} survived`);
  }
  if (ctx.tmp) {
    const logs = path.join(ARTIFACTS, 'logs');
    copyLogs(path.join(ctx.userDataDir, 'logs'), logs, /\.log$/);
    if (fs.existsSync(ctx.serverLog)) {
      fs.mkdirSync(logs, { recursive: true });
      fs.copyFileSync(ctx.serverLog, path.join(logs, 'code-server.log'));
    }
    if (!KEEP) {
      fs.rmSync(ctx.tmp, { recursive: true, force: true });
    }
  }
});

function extensionLog() {
  return readLogs(path.join(ctx.userDataDir, 'logs'), /Speculative Edits/);
}

function diskText(name = FILE_NAME) {
  return fs.readFileSync(path.join(ctx.workspace, name), 'utf8');
}

/** The review's status-bar item ("Speculative Edits review: …"), or '' when there is none. */
async function reviewLabel(page) {
  const item = page.locator('.statusbar [aria-label^="Speculative Edits review:"]').first();
  return (await item.getAttribute('aria-label', { timeout: 1_000 }).catch(() => null)) ?? '';
}

async function waitForReview(page, re, timeoutMs) {
  let label = '';
  await waitFor(async () => re.test((label = await reviewLabel(page))), `the review to show ${re}`, timeoutMs);
  return label;
}

/** A CodeLens over the editor, by its exact title. */
function lens(page, title) {
  return page.locator('.codelens-decoration a').filter({ hasText: title }).first();
}

/** Waits until `n` hunks show their own Accept lens (stale lenses are gone). */
async function waitForLenses(page, n) {
  const accepts = page.locator('.codelens-decoration a').filter({ hasText: /^Accept$/ });
  await waitFor(async () => (await accepts.count()) === n, `${n} Accept lens(es)`, 15_000);
  await sleep(300);
}

/** Saves the active editor and returns the file's text on disk. */
async function save(page, name) {
  await page.keyboard.press('Control+S');
  await waitFor(async () => !(await isDirty(page, name)), `the save of ${name}`, 15_000);
  return diskText(name);
}

test('rewrite from the light-bulb menu: the saved file is the engine\'s rewrite', async () => {
  const page = ctx.page;
  await openFile(page, FILE_NAME);
  const ready = await waitForStatus(page, /^Speculative Edits: (ready|error|not running)/, 180_000);
  assert.match(ready, /ready/, `server did not get ready: ${ready}\n${extensionLog()}`);
  await screenshot(page, ARTIFACTS, '01-ready.png');

  await selectLines(page, REWRITE.first, REWRITE.last);
  await page.keyboard.press('Control+.');
  const menu = page.locator('.action-widget');
  const item = menu.locator('.monaco-list-row', { hasText: 'Rewrite selection with instruction' }).first();
  await item.waitFor({ state: 'visible', timeout: 30_000 });
  await screenshot(page, ARTIFACTS, '02-code-action-menu.png');
  // The menu takes the keyboard (a pointer block lies over it): move the focus, then Enter.
  const focused = menu.locator('.monaco-list-row.focused');
  for (let i = 0; i < 10; i++) {
    const label = (await focused.getAttribute('aria-label').catch(() => null)) ?? '';
    if (label.startsWith('Rewrite selection with instruction')) {
      break;
    }
    await page.keyboard.press('ArrowDown');
  }
  assert.match((await focused.getAttribute('aria-label')) ?? '', /^Rewrite selection with instruction/);
  await page.keyboard.press('Enter');

  await enterInstruction(page, REWRITE.instruction);
  const t0 = Date.now();
  const review = await waitForReview(page, /pending/, 180_000);
  const label = await waitForStatus(page, /^Speculative Edits: ready; last rewrite/, 60_000);
  log(`review after ${Date.now() - t0} ms: ${review}; status: ${label}`);
  assert.match(review, /tok\/s/, 'the review shows no stats');
  await lens(page, 'Accept All').waitFor({ state: 'visible', timeout: 10_000 });
  await screenshot(page, ARTIFACTS, '03-review.png');
  assert.equal(diskText(), ORIGINAL, 'something was saved before it was accepted');

  await page.keyboard.press('Control+Alt+Y'); // Accept All
  await waitFor(async () => (await reviewLabel(page)) === '', 'the review to end', 15_000);
  await screenshot(page, ARTIFACTS, '03b-accepted.png');
  const saved = await save(page, FILE_NAME);
  const expected = await ctx.expected;

  const before = lines(ORIGINAL);
  const got = lines(saved);
  // text outside the selection is unchanged, the selection's text changed
  assert.ok(saved.startsWith(before.slice(0, REWRITE.first - 1).join('')), 'text above the selection changed');
  assert.ok(saved.endsWith(before.slice(REWRITE.last).join('')), 'text below the selection changed');
  const region = saved.slice(
    before.slice(0, REWRITE.first - 1).join('').length,
    saved.length - before.slice(REWRITE.last).join('').length,
  );
  assert.notEqual(region, before.slice(REWRITE.first - 1, REWRITE.last).join(''), 'the selection did not change');
  // and it is exactly the engine's (greedy, deterministic) rewrite
  assert.equal(saved, expected.file, 'the saved file differs from the CLI rewrite');
  log(`saved file has ${got.length} lines; rewritten region: ${JSON.stringify(region).slice(0, 200)}`);

  // One undo takes back the whole review (its edits are one undo group).
  await page.keyboard.press('Control+Z');
  assert.equal(await save(page, FILE_NAME), ORIGINAL, 'one undo after Accept All did not restore the original');
});

test('review of two hunks: accept one, reject the other; undo; Reject All', async () => {
  const page = ctx.page;
  const expected = await ctx.expectedReview;
  // The test model's output is known (make_model.py): the CLI agrees, so the hunks are too.
  assert.equal(expected.text, REPEATED_LINE.repeat(3), 'the test model did not write what make_model.py says');
  await openFile(page, REVIEW_FILE);

  await selectLines(page, REVIEWED.first, REVIEWED.last);
  await runCommand(page, 'Speculative Edits: Rewrite Selection with Instruction');
  await enterInstruction(page, REVIEWED.instruction);
  await waitForReview(page, /rewriting/, 60_000);
  // These 21 tokens take seconds on a busy machine and well under one on an idle one, so the
  // running state may already be over; the cancel test below shows a long rewrite mid-stream.
  const running = await lens(page, 'Cancel')
    .waitFor({ state: 'visible', timeout: 5_000 })
    .then(() => true, () => false);
  if (running) {
    await sleep(300); // some of the output is in
    await screenshot(page, ARTIFACTS, 'r1-review-mid-stream.png');
  } else {
    log('the short review rewrite ended before its running state could be seen');
  }
  const review = await waitForReview(page, /2 pending/, 180_000);
  log(`review: ${review}`);
  await lens(page, 'Accept All').waitFor({ state: 'visible', timeout: 10_000 });
  await screenshot(page, ARTIFACTS, 'r2-review-two-hunks.png');
  assert.equal(diskText(REVIEW_FILE), REVIEW_ORIGINAL);

  await waitForLenses(page, 2);
  await lens(page, /^Accept$/).click(); // the first hunk
  await waitForReview(page, /1 pending/, 15_000);
  await waitForLenses(page, 1); // VS Code asks for the lenses again a moment after an edit
  await screenshot(page, ARTIFACTS, 'r3-review-one-hunk-accepted.png');
  await lens(page, /^Reject$/).click(); // the second (and last) hunk
  await waitFor(async () => (await reviewLabel(page)) === '', 'the review to end', 15_000);
  // hunk 1 (line 2 removed) accepted, hunk 2 (line 4 -> two copies of line 3) rejected
  assert.equal(await save(page, REVIEW_FILE), 'def check(value):\n    return None\n    print(value)\n',
    'accepting the first hunk and rejecting the second did not give that mix');

  await page.keyboard.press('Control+Z');
  assert.equal(await save(page, REVIEW_FILE), REVIEW_ORIGINAL, 'one undo after the review did not restore the original');

  // Again, and Reject All: the original, exactly.
  await selectLines(page, REVIEWED.first, REVIEWED.last);
  await runCommand(page, 'Speculative Edits: Rewrite Selection with Instruction');
  await enterInstruction(page, REVIEWED.instruction);
  await waitForReview(page, /2 pending/, 180_000);
  await page.keyboard.press('Control+Alt+N'); // Reject All
  await waitFor(async () => (await reviewLabel(page)) === '', 'the review to end', 15_000);
  await page.keyboard.press('Control+S');
  await sleep(1_000);
  assert.equal(diskText(REVIEW_FILE), REVIEW_ORIGINAL, 'Reject All did not leave the original');
  await openFile(page, FILE_NAME);
});

test('cancel from the progress notification: nothing changes', async () => {
  const page = ctx.page;
  const before = diskText();

  // A long rewrite: raise maxNewTokens in the Settings editor; the extension forwards the
  // change to the server, which logs its new settings.
  await setSetting(page, 'specedit.maxNewTokens', LONG_MAX_NEW_TOKENS, FILE_NAME, {
    beforeLeaving: () => screenshot(page, ARTIFACTS, '04-settings-editor.png'),
  });
  await waitFor(
    () => extensionLog().includes(`"maxNewTokens":${LONG_MAX_NEW_TOKENS}`),
    'the extension to send the settings change',
    30_000,
  );
  await waitFor(
    () => extensionLog().includes(`max_new_tokens=${LONG_MAX_NEW_TOKENS}`),
    'the server to log its new settings',
    30_000,
  );

  await selectLines(page, CANCELLED.first, CANCELLED.last);
  await runCommand(page, 'Speculative Edits: Rewrite Selection with Instruction');
  await enterInstruction(page, CANCELLED.instruction);

  const toast = page.locator('.notifications-toasts .notification-toast', {
    has: page.locator('.monaco-button', { hasText: 'Cancel' }),
  }).first();
  try {
    await toast.waitFor({ state: 'visible', timeout: 60_000 });
  } catch (e) {
    await screenshot(page, ARTIFACTS, 'failure-no-progress-notification.png');
    fs.writeFileSync(path.join(ARTIFACTS, 'failure-notifications.html'),
      await page.locator('.notifications-toasts').evaluate((el) => el.outerHTML).catch(() => 'none'));
    throw e;
  }
  await waitForStatus(page, /^Speculative Edits: rewriting/, 30_000);
  await sleep(500); // let it get going
  await screenshot(page, ARTIFACTS, '05-progress-notification.png');
  await toast.locator('.monaco-button', { hasText: 'Cancel' }).click();
  const t0 = Date.now();

  await toast.waitFor({ state: 'hidden', timeout: 60_000 });
  const label = await waitForStatus(page, /^Speculative Edits: ready/, 60_000);
  log(`cancelled after ${Date.now() - t0} ms; status: ${label}`);
  await sleep(2_000); // an edit arriving late would show up here
  await screenshot(page, ARTIFACTS, '06-after-cancel.png');

  assert.equal(diskText(), before, 'the file changed on disk');
  // (the review may have shown part of the rewrite meanwhile: the editor's text is what counts)
  assert.equal(await save(page, FILE_NAME), before, 'the editor was changed by a cancelled rewrite');
  await waitFor(
    () => readLogs(path.join(ctx.userDataDir, 'logs'), /Speculative Edits Trace/).includes('window/workDoneProgress/cancel'),
    'window/workDoneProgress/cancel in the trace',
    10_000,
  );

  // Once more, with the review's own Cancel lens: $/cancelRequest for the request.
  await selectLines(page, CANCELLED.first, CANCELLED.last);
  await runCommand(page, 'Speculative Edits: Rewrite Selection with Instruction');
  await enterInstruction(page, CANCELLED.instruction);
  await waitForReview(page, /rewriting/, 60_000);
  await waitForStatus(page, /^Speculative Edits: rewriting/, 30_000);
  await sleep(2_000); // let it get going
  await screenshot(page, ARTIFACTS, '06b-review-before-cancel.png');
  // The review's own "Cancel" lens is not drawn while partial results stream in fast (VS Code
  // redraws lenses only once edits pause), so this second rewrite is cancelled with the
  // command the lens runs, from the command palette: the client cancels its request
  // ($/cancelRequest). (Cancelling from the notification again sends only
  // window/workDoneProgress/cancel, so waiting for $/cancelRequest after it was a race.)
  await runCommand(page, 'Speculative Edits: Cancel the Rewrite');
  await waitFor(async () => (await reviewLabel(page)) === '', 'the review to end', 30_000);
  const again = await waitForStatus(page, /^Speculative Edits: ready/, 60_000);
  log(`cancelled mid-stream; status: ${again}`);
  await sleep(1_000);
  await screenshot(page, ARTIFACTS, '06c-after-second-cancel.png');
  assert.equal(await save(page, FILE_NAME), before, 'the editor was changed by a cancelled review');
  await waitFor(
    () => readLogs(path.join(ctx.userDataDir, 'logs'), /Speculative Edits Trace/).includes('$/cancelRequest'),
    '$/cancelRequest in the trace',
    10_000,
  );
  assert.notEqual(await statusLabel(page), '', 'status item vanished');
});

test('a Python without the server: one message with the install command', async () => {
  const page = ctx.page;
  // A virtual environment without the package (and without the other Python's site-packages).
  const venv = path.join(ctx.tmp, 'venv-without-server');
  await run(ctx.python, ['-m', 'venv', '--without-pip', venv]);
  // A PYTHONPATH in the test's environment (a checkout tried ahead of the installed package)
  // reaches this Python through code-server and would put the server's modules on its path:
  // run it without one.
  const python = path.join(ctx.tmp, 'python-without-server');
  fs.writeFileSync(python, `#!/bin/sh\nunset PYTHONPATH\nexec '${path.join(venv, 'bin', 'python')}' "$@"\n`, { mode: 0o755 });

  await setSetting(page, 'specedit.pythonPath', python, FILE_NAME, { scope: 'Remote' });
  const label = await waitForStatus(page, /^Speculative Edits: not running/, 60_000);
  log(`status: ${label}`);
  const toasts = page.locator('.notifications-toasts .notification-toast');
  const message = toasts.filter({ hasText: 'is not installed for' });
  await message.first().waitFor({ state: 'visible', timeout: 30_000 });
  await sleep(700); // past the toast's fade-in
  await screenshot(page, ARTIFACTS, '07-server-not-installed.png');
  const text = await message.first().innerText();
  assert.ok(text.includes(`${python} -m pip install speculative-edits`), `no install command in: ${text}`);
  assert.equal(await message.count(), 1, 'the message was shown more than once');
  // and nothing else about the failed start (vscode-languageclient's own pop-ups)
  const all = await toasts.allInnerTexts();
  const others = all.filter((t) => /Speculative Edits|couldn't create connection|Server initialization failed/i.test(t)
    && !t.includes('is not installed for'));
  assert.deepEqual(others, [], `other messages about the server: ${JSON.stringify(others)}`);
});
