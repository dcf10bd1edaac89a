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
/** The review's commands (review.ts). */
export const ACCEPT_ALL_COMMAND = 'specedit.acceptAll';
export const REJECT_ALL_COMMAND = 'specedit.rejectAll';
export const ACCEPT_HUNK_COMMAND = 'specedit.acceptChange';
export const REJECT_HUNK_COMMAND = 'specedit.rejectChange';
export const CANCEL_REWRITE_COMMAND = 'specedit.cancelRewrite';
export const EXTENSION_COMMANDS = [
  INTERACTIVE_REWRITE_COMMAND,
  SHOW_LOG_COMMAND,
  RESTART_SERVER_COMMAND,
  CLEAR_RECENT_COMMAND,
  ACCEPT_ALL_COMMAND,
  REJECT_ALL_COMMAND,
  ACCEPT_HUNK_COMMAND,
  REJECT_HUNK_COMMAND,
  CANCEL_REWRITE_COMMAND,
] as const;

/** Context keys (package.json's `when` clauses): a review waits for decisions; a rewrite runs. */
export const REVIEWING_CONTEXT = 'specedit.reviewing';
export const REWRITING_CONTEXT = 'specedit.rewriting';
/**
 * The paths of the documents a rewrite runs for, for `resourcePath in …` in `when` clauses.
 * Paths, not URIs: in a remote window (code-server, SSH) the workbench knows a document as
 * `vscode-remote://…` and the extension as `file://…`, but both by the same path.
 */
export const REWRITING_PATHS_CONTEXT = 'specedit.rewritingPaths';

/** The client-only setting that picks review (`inline`) or direct apply (`off`). */
export const REVIEW_SETTING = 'review';
export type ReviewMode = 'inline' | 'off';

/** Request provided by the server: the rewrite as an edit, applied by the client. */
export const REWRITE_REQUEST = 'specedit/rewrite';

/** Server → client notification with the model's state and the last rewrite's speed. */
export const STATUS_NOTIFICATION = 'specedit/status';
