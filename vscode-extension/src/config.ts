// Reads the `specedit.*` settings from VS Code.
import * as vscode from 'vscode';
import { REVIEW_SETTING, type ReviewMode, SETTINGS_SECTION } from './ids';
import { serverSettings, type ServerSettings } from './settings';

/** The settings the server gets, in the shape it expects on the wire. */
export function readServerSettings(): ServerSettings {
  const config = vscode.workspace.getConfiguration(SETTINGS_SECTION);
  return serverSettings((key) => config.get<unknown>(key));
}

/** `specedit.pythonPath` as set (empty: use the Python extension's interpreter, else python3). */
export function configuredPythonPath(): string {
  return vscode.workspace.getConfiguration(SETTINGS_SECTION).get<string>('pythonPath') ?? '';
}

/** `specedit.review` (client-only, never sent to the server): anything but `off` reviews inline. */
export function reviewMode(): ReviewMode {
  const v = vscode.workspace.getConfiguration(SETTINGS_SECTION).get<unknown>(REVIEW_SETTING);
  return v === 'off' ? 'off' : 'inline';
}
