// package.json against the names the code uses, and the one-line message helpers: `npm test`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { EXTENSION_COMMANDS, SETTINGS_SECTION } from '../ids';
import { SERVER_SETTING_KEYS } from '../settings';
import { firstLine, lastLine } from '../text';

interface Manifest {
  contributes: {
    commands: { command: string }[];
    configuration: { properties: Record<string, unknown> };
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
