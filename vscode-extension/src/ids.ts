// Names the extension shares with package.json (commands, the settings section) and with the
// language server (its command and notification). Pure (no `vscode` import) so that a unit
// test can check them against package.json.

export const CLIENT_ID = 'specedit';
export const CLIENT_NAME = 'Speculative Edits';
/** The settings section, `specedit.*`. */
export const SETTINGS_SECTION = 'specedit';

/** Command provided by the server (registered in VS Code by vscode-languageclient). */
export const SERVER_REWRITE_COMMAND = 'specedit.rewriteSelection';
/** The extension's own commands, declared in package.json. */
export const INTERACTIVE_REWRITE_COMMAND = 'specedit.rewriteSelectionInteractive';
export const SHOW_LOG_COMMAND = 'specedit.showLog';
export const RESTART_SERVER_COMMAND = 'specedit.restartServer';
export const CLEAR_RECENT_COMMAND = 'specedit.clearRecentInstructions';
export const EXTENSION_COMMANDS = [
  INTERACTIVE_REWRITE_COMMAND,
  SHOW_LOG_COMMAND,
  RESTART_SERVER_COMMAND,
  CLEAR_RECENT_COMMAND,
] as const;

/** Server → client notification with the model's state and the last rewrite's speed. */
export const STATUS_NOTIFICATION = 'specedit/status';
