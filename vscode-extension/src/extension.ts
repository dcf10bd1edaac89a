// Speculative Edits for VS Code: a thin client over the speculative-edits language server.
//
// Everything that touches the model goes through the server (`python -m lsp_server --stdio`):
// the server offers the code actions, runs the rewrite, applies the edit with
// `workspace/applyEdit` and reports progress with `window/workDoneProgress`. The extension
// starts the server (client.ts), asks the user for an instruction (middleware.ts,
// commands.ts), runs the review (review.ts), shows the server's progress (progress.ts), its
// notes (notices.ts) and its `specedit/status` in the status bar (statusBar.ts), and keeps a
// Cancel in reach while a rewrite runs (runningRewrites.ts). This file wires them together
// and follows setting changes.
import * as vscode from 'vscode';
import { SpecEditClient } from './client';
import { registerCommands } from './commands';
import { configuredPythonPath } from './config';
import { SETTINGS_SECTION } from './ids';
import { onPythonInterpreterChanged } from './python';
import { SERVER_SETTING_KEYS } from './settings';

let specEdit: SpecEditClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const ext = new SpecEditClient(context);
  specEdit = ext;
  context.subscriptions.push(
    ext,
    ...registerCommands(ext, context.globalState),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(`${SETTINGS_SECTION}.pythonPath`)) {
        void ext.restart();
      } else if (SERVER_SETTING_KEYS.some((k) => e.affectsConfiguration(`${SETTINGS_SECTION}.${k}`))) {
        void ext.pushSettings();
      }
    }),
  );
  // With no pythonPath set, the server runs with the Python extension's interpreter: follow it.
  void onPythonInterpreterChanged(() => {
    if (configuredPythonPath().trim() === '') {
      void ext.restart();
    }
  }).then((d) => {
    if (d) {
      context.subscriptions.push(d);
    }
  });
  void ext.start();
}

export async function deactivate(): Promise<void> {
  const ext = specEdit;
  specEdit = undefined;
  await ext?.stop();
}
