// The rewrites that run right now, by document, and the Cancel that is always in reach for them.
//
// The review's "Rewriting… Cancel" lens cannot be relied on while a rewrite streams: VS Code
// asks for lenses again only once the document has not changed for a while (at least 250 ms),
// and partial results change it every 50 ms on a fast machine, so a lens that was not drawn
// before the first partial result arrives is not drawn until the stream ends. Context keys and
// status-bar items do not wait for the document to settle, so these stay in reach:
//   - a status-bar item, shown while a rewrite of the active editor's document runs;
//   - a button in that editor's title bar (package.json: `resourcePath in specedit.rewritingPaths`);
//   - `specedit.cancelRewrite` in the palette and on its keybinding.
// Each rewrite registers how it is cancelled (the review: its request's token; a direct
// rewrite: its work-done progress), so every Cancel stops exactly that rewrite.
import * as vscode from 'vscode';
import { CANCEL_REWRITE_COMMAND, REWRITING_CONTEXT, REWRITING_PATHS_CONTEXT } from './ids';

interface Running {
  document: vscode.Uri;
  cancel: () => void;
}

export class RunningRewrites implements vscode.Disposable {
  /** By document URI (as a string, as VS Code's `resource` context key holds it). */
  private readonly running = new Map<string, Running>();
  private readonly item = vscode.window.createStatusBarItem('specedit.cancel', vscode.StatusBarAlignment.Right, 99);
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.item.name = 'Speculative Edits: Cancel the Rewrite';
    this.item.text = '$(debug-stop) Cancel rewrite';
    this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
    this.disposables.push(
      vscode.commands.registerCommand(CANCEL_REWRITE_COMMAND, (resource: unknown) => {
        this.cancel(resource instanceof vscode.Uri ? resource : undefined);
      }),
      vscode.window.onDidChangeActiveTextEditor(() => {
        this.update();
      }),
    );
  }

  /** A rewrite of `document` starts; disposing the result says it has ended. */
  start(document: vscode.Uri, cancel: () => void): vscode.Disposable {
    const key = document.toString();
    const entry: Running = { document, cancel };
    this.running.set(key, entry);
    this.update();
    return new vscode.Disposable(() => {
      if (this.running.get(key) === entry) {
        this.running.delete(key);
        this.update();
      }
    });
  }

  isRunning(document: vscode.Uri): boolean {
    return this.running.has(document.toString());
  }

  /**
   * Cancels the rewrite of `document`; without one, that of the active editor's document, or
   * the only one running (the palette, from another editor). Returns whether one was cancelled.
   */
  cancel(document?: vscode.Uri): boolean {
    const key = (document ?? vscode.window.activeTextEditor?.document.uri)?.toString();
    let entry = key === undefined ? undefined : this.running.get(key);
    if (entry === undefined && document === undefined && this.running.size === 1) {
      entry = [...this.running.values()][0];
    }
    entry?.cancel();
    return entry !== undefined;
  }

  private update(): void {
    void vscode.commands.executeCommand('setContext', REWRITING_CONTEXT, this.running.size > 0);
    // What VS Code's `resourcePath` holds: the file-system path of a file, the path otherwise.
    const paths = [...this.running.values()].map(({ document }) =>
      document.scheme === 'file' ? document.fsPath : document.path);
    void vscode.commands.executeCommand('setContext', REWRITING_PATHS_CONTEXT, paths);
    const active = vscode.window.activeTextEditor?.document;
    if (active !== undefined && this.isRunning(active.uri)) {
      const name = active.uri.path.split('/').pop() ?? active.uri.toString();
      this.item.tooltip = `Cancel the rewrite of ${name}: the model stops before its next forward pass ` +
        'and the lines stay as they were (Ctrl+Alt+N)';
      this.item.accessibilityInformation = { label: `Cancel the rewrite of ${name}`, role: 'button' };
      this.item.command = { title: 'Cancel the Rewrite', command: CANCEL_REWRITE_COMMAND, arguments: [active.uri] };
      this.item.show();
    } else {
      this.item.hide();
    }
  }

  dispose(): void {
    for (const entry of this.running.values()) {
      entry.cancel();
    }
    this.running.clear();
    for (const d of this.disposables) {
      d.dispose();
    }
    this.item.dispose();
  }
}
