// The extension's own commands (palette, context menu, keybinding, status-bar click).
import * as vscode from 'vscode';
import type { SpecEditClient } from './client';
import {
  CLEAR_RECENT_COMMAND,
  INTERACTIVE_REWRITE_COMMAND,
  RESTART_SERVER_COMMAND,
  SERVER_REWRITE_COMMAND,
  SHOW_LOG_COMMAND,
} from './ids';
import { askForInstruction, clearRecentInstructions } from './instruction';

export function registerCommands(ext: SpecEditClient, state: vscode.Memento): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(INTERACTIVE_REWRITE_COMMAND, () => rewriteSelectionInteractive(ext, state)),
    vscode.commands.registerCommand(SHOW_LOG_COMMAND, () => {
      ext.showLog();
    }),
    vscode.commands.registerCommand(RESTART_SERVER_COMMAND, () => ext.restart()),
    vscode.commands.registerCommand(CLEAR_RECENT_COMMAND, () => clearRecentInstructions(state)),
  ];
}

/** Rewrites the active editor's selection: asks for the instruction, then runs the server's command. */
async function rewriteSelectionInteractive(ext: SpecEditClient, state: vscode.Memento): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showInformationMessage('Speculative Edits: open a file and select the code to rewrite.');
    return;
  }
  const selection = editor.selection;
  if (selection.isEmpty) {
    void vscode.window.showInformationMessage('Speculative Edits: select the code to rewrite first.');
    return;
  }
  const client = await ext.ready();
  if (!client) {
    return; // the client has said why it cannot start
  }
  const instruction = await askForInstruction(state);
  if (instruction === undefined) {
    return;
  }
  const argument = {
    uri: client.code2ProtocolConverter.asUri(editor.document.uri),
    range: client.code2ProtocolConverter.asRange(selection),
    instruction,
  };
  const registered = await vscode.commands.getCommands(true);
  if (!registered.includes(SERVER_REWRITE_COMMAND)) {
    void ext.messages.showError(
      `Speculative Edits: the language server does not offer the command ${SERVER_REWRITE_COMMAND}; is it an older version?`,
      ['Show Log'],
    );
    return;
  }
  // Goes through the client-registered command, i.e. the middleware (middleware.ts), to the server.
  await vscode.commands.executeCommand(SERVER_REWRITE_COMMAND, argument);
}
