// Unit tests of the extension's pure helpers (no VS Code needed): `npm test`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientCapabilities } from 'vscode-languageclient/node';
import { declineEditResolution } from '../presetActions';
import { asRecentList, pushRecent } from '../recent';
import { serverSettings, type ServerSettingKey } from '../settings';
import { isServerStatus, viewForClientState, viewForStatus } from '../status';

function fromObject(o: Record<string, unknown>): (key: ServerSettingKey) => unknown {
  return (key) => o[key];
}

void test('serverSettings sends every server key with its value', () => {
  assert.deepEqual(
    serverSettings(
      fromObject({
        model: ' /models/tiny ',
        device: 'auto',
        dtype: 'float32',
        method: 'speculative',
        maxNewTokens: 0,
        contextLines: 20,
        presets: ['Add type hints', '', 3, ' Add docstrings '],
        pythonPath: '/usr/bin/python3',
        trace: { server: 'verbose' },
      }),
    ),
    {
      model: '/models/tiny',
      device: 'auto',
      dtype: 'float32',
      method: 'speculative',
      maxNewTokens: 0,
      contextLines: 20,
      presets: ['Add type hints', 'Add docstrings'],
    },
  );
});

void test('serverSettings keeps an empty preset list (no preset actions)', () => {
  assert.deepEqual(serverSettings(fromObject({ presets: [] })), { presets: [] });
});

void test('serverSettings leaves out empty and wrongly typed values', () => {
  assert.deepEqual(
    serverSettings(
      fromObject({ model: '  ', device: 3, maxNewTokens: 2.5, contextLines: -1, presets: 'x' }),
    ),
    {},
  );
  assert.deepEqual(serverSettings(fromObject({ maxNewTokens: null, contextLines: null })), {});
});

void test('pushRecent puts the newest first, deduplicates and caps the list', () => {
  assert.deepEqual(pushRecent(['a', 'b', 'c'], 'b'), ['b', 'a', 'c']);
  assert.deepEqual(pushRecent(['a', 'b'], ' c '), ['c', 'a', 'b']);
  assert.deepEqual(pushRecent(['a', 'b', 'c'], 'd', 3), ['d', 'a', 'b']);
  assert.deepEqual(pushRecent(['a'], '   '), ['a']);
});

void test('asRecentList tolerates whatever was stored', () => {
  assert.deepEqual(asRecentList(undefined), []);
  assert.deepEqual(asRecentList('x'), []);
  assert.deepEqual(asRecentList(['x', 1, '', 'y']), ['x', 'y']);
});

void test('status bar: loading, busy and error states', () => {
  assert.match(viewForStatus({ state: 'loading', model: 'tiny' }).text, /loading/);
  assert.match(viewForStatus({ state: 'busy', model: 'tiny' }).text, /rewriting/);
  const error = viewForStatus({ state: 'error', model: 'tiny', message: 'no such model' });
  assert.equal(error.isError, true);
  assert.match(error.tooltip, /no such model/);
});

void test('status bar: ready shows the last rewrite tokens/s and speed-up', () => {
  const view = viewForStatus({
    state: 'ready',
    model: 'tiny',
    lastRewrite: { tokensPerSecond: 123.456, speedup: 3.21, outputTokens: 40, forwardPasses: 9 },
  });
  assert.equal(view.text, '$(zap) SpecEdit: 123 tok/s · 3.2×');
  assert.match(view.tooltip, /40 tokens in 9 forward passes/);
  assert.equal(view.ariaLabel, 'Speculative Edits: ready; last rewrite 123 tok/s, 3.2× speed-up');
  assert.equal(view.isError, false);
  const noSpeedup = viewForStatus({
    state: 'ready',
    model: 'tiny',
    lastRewrite: { tokensPerSecond: 7.25, speedup: null, outputTokens: 4, forwardPasses: 4 },
  });
  assert.equal(noSpeedup.text, '$(zap) SpecEdit: 7.3 tok/s');
  assert.equal(viewForStatus({ state: 'ready', model: 'tiny' }).text, '$(check) SpecEdit');
});

void test('status bar: one item says the state, the changes waiting for review and the last speed', () => {
  const ready = {
    state: 'ready' as const,
    model: 'tiny',
    lastRewrite: { tokensPerSecond: 296.2, speedup: 0.8, outputTokens: 21, forwardPasses: 21 },
  };
  const pending = viewForStatus(ready, { kind: 'pending', changes: 2 });
  assert.equal(pending.text, '$(diff) SpecEdit: 2 changes to review · 296 tok/s · 0.8×');
  assert.equal(pending.ariaLabel, 'Speculative Edits: ready; 2 changes to review; last rewrite 296 tok/s, 0.8× speed-up');
  assert.match(pending.tooltip, /Accept All \(Ctrl\+Alt\+Y\)/);
  assert.match(pending.tooltip, /21 tokens in 21 forward passes/);
  // the speed once, not twice
  assert.equal(pending.text.split('tok/s').length, 2);
  assert.equal(viewForStatus({ state: 'ready', model: 'tiny' }, { kind: 'pending', changes: 1 }).text,
    '$(diff) SpecEdit: 1 change to review');
  // streaming for review before the server says "busy": already rewriting
  const streaming = viewForStatus(ready, { kind: 'streaming' });
  assert.equal(streaming.ariaLabel, 'Speculative Edits: rewriting');
  assert.match(streaming.tooltip, /Cancel/);
  assert.equal(viewForStatus({ state: 'busy', model: 'tiny' }, { kind: 'streaming' }).ariaLabel, 'Speculative Edits: rewriting');
  // a review outlives a server restart: still said
  assert.equal(viewForClientState('starting', undefined, { kind: 'pending', changes: 3 }).ariaLabel,
    'Speculative Edits: starting the language server; 3 changes to review');
  assert.equal(viewForStatus(ready).text, '$(zap) SpecEdit: 296 tok/s · 0.8×');
});

void test('presets as commands: the client does not offer to resolve an action\'s edit', () => {
  const caps: ClientCapabilities = {
    textDocument: { codeAction: { dataSupport: true, resolveSupport: { properties: ['edit', 'command'] } } },
  };
  declineEditResolution(caps);
  assert.deepEqual(caps.textDocument?.codeAction?.resolveSupport?.properties, ['command']);
  const none: ClientCapabilities = {};
  declineEditResolution(none);
  assert.deepEqual(none, {});
});

void test('status bar: client-side states', () => {
  assert.equal(viewForClientState('stopped').isError, true);
  assert.match(viewForClientState('starting').text, /loading~spin/);
});

void test('isServerStatus checks the wire shape', () => {
  assert.equal(isServerStatus({ state: 'ready', model: 'm' }), true);
  assert.equal(isServerStatus({ model: 'm' }), false);
  assert.equal(isServerStatus(null), false);
  assert.equal(isServerStatus({ state: 'ready', model: 3 }), false);
});
