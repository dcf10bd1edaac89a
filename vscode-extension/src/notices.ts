// Warnings and notes about a rewrite (cut short at maxNewTokens, left unchanged, cancelled) as
// notifications that end.
//
// VS Code offers no way to close a message shown with showWarningMessage or
// showInformationMessage: one about an earlier rewrite would stay on screen over the next
// rewrite, as if it were about that one. A progress notification closes when its task ends,
// so each notice is one, ended when the next rewrite starts, or otherwise after as long as VS
// Code keeps a message of that kind on screen. (A progress notification has no close button of
// its own; it gets no Cancel button either, which would read as cancelling a rewrite.) Every
// notice also goes to the log, since an ended notification leaves nothing in the
// notification centre. Errors are not notices: they stay until the user closes them.
import * as vscode from 'vscode';

export type NoticeKind = 'info' | 'warning';

/** How long VS Code itself shows a message of each kind before it hides it (notificationsToasts.ts). */
const SHOWN_FOR_MS: Record<NoticeKind, number> = { info: 15_000, warning: 18_000 };

export class Notices implements vscode.Disposable {
  private readonly open = new Set<() => void>();

  constructor(private readonly output: vscode.LogOutputChannel) {}

  show(kind: NoticeKind, message: string): void {
    if (kind === 'warning') {
      this.output.warn(message);
    } else {
      this.output.info(message);
    }
    let close: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        close();
      }, SHOWN_FOR_MS[kind]);
      close = () => {
        clearTimeout(timer);
        this.open.delete(close);
        resolve();
      };
    });
    this.open.add(close);
    void vscode.window.withProgress(
      // The notification's only icon is the info icon: a warning says so in words.
      { location: vscode.ProgressLocation.Notification, title: kind === 'warning' ? `⚠ ${message}` : message },
      (progress) => {
        progress.report({ increment: 100 }); // a full bar: nothing is running
        return closed;
      },
    );
  }

  /** Closes every notice on screen: a new rewrite starts, and they were about earlier ones. */
  dismiss(): void {
    for (const close of [...this.open]) {
      close();
    }
  }

  dispose(): void {
    this.dismiss();
  }
}
