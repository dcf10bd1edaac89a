// The extension's error messages: one per problem, each with the buttons that fix it.
import * as vscode from 'vscode';
import { displayPython, installCommand, type ProbeResult, type PythonCommand } from './python';
import { SETTINGS_SECTION } from './ids';
import { firstLine } from './text';

/** Buttons of this extension's error messages. */
export type MessageAction = 'Copy Install Command' | 'Open Settings' | 'Show Log' | 'Retry';

export interface StartFailure {
  message: string;
  actions: MessageAction[];
  /** The `pip install` command for the interpreter that failed. */
  install: string;
}

/** Why the server did not start with `python`, and what the user can do about it. */
export function startFailure(python: PythonCommand, probe: Exclude<ProbeResult, { ok: true }>): StartFailure {
  const install = installCommand(python);
  switch (probe.reason) {
    case 'no-python':
      return {
        message:
          `Speculative Edits: cannot start the language server: the Python interpreter "${displayPython(python)}" ` +
          `(from ${python.source}) was not found. Install Python 3.10+ and then the server with: ${install} ` +
          `— or point the setting specedit.pythonPath at a Python that has it.`,
        actions: ['Open Settings', 'Copy Install Command', 'Retry'],
        install,
      };
    case 'no-package':
      return {
        message:
          `Speculative Edits: the language server is not installed for "${displayPython(python)}" ` +
          `(from ${python.source}). Install it with: ${install}`,
        actions: ['Copy Install Command', 'Open Settings', 'Retry'],
        install,
      };
    case 'failed':
      return {
        message:
          `Speculative Edits: the language server did not start with "${displayPython(python)}": ` +
          `${firstLine(probe.detail)}. See the log; to (re)install it: ${install}`,
        actions: ['Show Log', 'Copy Install Command', 'Retry'],
        install,
      };
  }
}

/** Shows error messages and carries out the button the user picks. */
export class Messages {
  constructor(
    private readonly output: vscode.LogOutputChannel,
    /** What the Retry button does: restart the server. */
    private readonly retry: () => Promise<unknown>,
  ) {}

  async showError(message: string, actions: MessageAction[], install?: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, ...actions);
    switch (choice) {
      case 'Copy Install Command':
        if (install) {
          await vscode.env.clipboard.writeText(install);
        }
        break;
      case 'Open Settings':
        await vscode.commands.executeCommand('workbench.action.openSettings', SETTINGS_SECTION);
        break;
      case 'Show Log':
        this.output.show(true);
        break;
      case 'Retry':
        await this.retry();
        break;
      case undefined:
        break;
    }
  }
}
