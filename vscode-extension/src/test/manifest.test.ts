// package.json against the names the code uses, and the one-line message helpers: `npm test`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  ACCEPT_ALL_COMMAND,
  CANCEL_REWRITE_COMMAND,
  EXTENSION_COMMANDS,
  REJECT_ALL_COMMAND,
  REVIEW_SETTING,
  REVIEWING_CONTEXT,
  REWRITING_CONTEXT,
  REWRITING_PATHS_CONTEXT,
  SETTINGS_SECTION,
} from '../ids';
import { SERVER_SETTING_KEYS } from '../settings';
import { firstLine, lastLine } from '../text';

interface Manifest {
  contributes: {
    commands: { command: string; icon?: string; enablement?: string }[];
    menus: Record<string, { command: string; when?: string; group?: string }[]>;
    configuration: { properties: Record<string, { default?: unknown; enum?: unknown[] }> };
    keybindings: { command: string; key: string; mac?: string; when?: string }[];
  };
}

// Compiled to out/test/, two levels below package.json.
const manifest = JSON.parse(
  readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'),
) as Manifest;

void test('package.json declares exactly the commands the extension registers', () => {
  const declared = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual(declared, [...EXTENSION_COMMANDS].sort());
});

void test('package.json has a setting for every key sent to the server', () => {
  const properties = Object.keys(manifest.contributes.configuration.properties);
  for (const key of SERVER_SETTING_KEYS) {
    assert.ok(properties.includes(`${SETTINGS_SECTION}.${key}`), `${SETTINGS_SECTION}.${key} is missing`);
  }
});

void test('firstLine skips blank lines and cuts long ones', () => {
  assert.equal(firstLine('\n  \nboom\nmore'), 'boom');
  assert.equal(firstLine('x'.repeat(301)), `${'x'.repeat(300)}…`);
});

void test('lastLine is the last non-empty line, trimmed, or undefined', () => {
  assert.equal(lastLine('Traceback:\n  File "x"\nValueError: bad\n\n'), 'ValueError: bad');
  assert.equal(lastLine(' \n'), undefined);
});

void test('specedit.review is a client-only setting, inline by default', () => {
  const review = manifest.contributes.configuration.properties[`${SETTINGS_SECTION}.${REVIEW_SETTING}`];
  assert.equal(review?.default, 'inline');
  assert.deepEqual(review.enum, ['inline', 'off']);
  assert.ok(!(SERVER_SETTING_KEYS as readonly string[]).includes(REVIEW_SETTING), 'review must not be sent to the server');
});

void test('Accept All and Reject All have keybindings, only while a review is on', () => {
  for (const command of [ACCEPT_ALL_COMMAND, REJECT_ALL_COMMAND]) {
    const binding = manifest.contributes.keybindings.find((k) => k.command === command);
    assert.ok(binding, `${command} has no keybinding`);
    assert.equal(binding.when, `${REVIEWING_CONTEXT} && editorTextFocus`);
  }
});

void test('Cancel is in the editor title bar and on a key, only while that editor\'s rewrite runs', () => {
  const title = manifest.contributes.menus['editor/title']?.find((m) => m.command === CANCEL_REWRITE_COMMAND);
  assert.ok(title, 'no Cancel button in the editor title bar');
  assert.equal(title.when, `resourcePath in ${REWRITING_PATHS_CONTEXT}`);
  assert.match(title.group ?? '', /^navigation/); // a button, not an item of the "…" menu
  const command = manifest.contributes.commands.find((c) => c.command === CANCEL_REWRITE_COMMAND);
  assert.ok(command?.icon, 'a title-bar button needs an icon');
  assert.equal(command.enablement, REWRITING_CONTEXT);
  const binding = manifest.contributes.keybindings.find((k) => k.command === CANCEL_REWRITE_COMMAND);
  assert.ok(binding, 'Cancel has no keybinding');
  assert.equal(binding.when, `${REWRITING_CONTEXT} && editorTextFocus`);
  // the key of Reject All, whose job it does while the rewrite runs (nothing to reject yet)
  const reject = manifest.contributes.keybindings.find((k) => k.command === REJECT_ALL_COMMAND);
  assert.equal(binding.key, reject?.key);
});
