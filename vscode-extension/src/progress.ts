// Server-initiated work-done progress as a cancellable notification.
//
// vscode-languageclient shows a server's `window/workDoneProgress` in the status bar
// (ProgressLocation.Window), where VS Code offers no Cancel. A rewrite takes seconds to
// minutes, so this extension answers `window/workDoneProgress/create` itself and shows the
// progress as a notification whose Cancel sends `window/workDoneProgress/cancel`.
import * as vscode from 'vscode';
import {
  type LanguageClient,
  type ProgressToken,
  WorkDoneProgress,
  type WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  type WorkDoneProgressReport,
} from 'vscode-languageclient/node';

export class NotificationProgress implements vscode.Disposable {
  private readonly active = new Map<ProgressToken, () => void>();

  constructor(
    private readonly client: LanguageClient,
    private readonly output: vscode.LogOutputChannel,
  ) {}

  /**
   * Takes over `window/workDoneProgress/create` from vscode-languageclient's own handler. Call
   * it each time the client reaches the running state: the client installs its handler while
   * initializing, and the last handler registered for a method is the one that answers.
   */
  install(): void {
    this.client.onRequest(WorkDoneProgressCreateRequest.type, (params) => {
      this.create(params.token);
    });
  }

  private create(token: ProgressToken): void {
    this.active.get(token)?.();
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    let reporter: vscode.Progress<{ message?: string; increment?: number }> | undefined;
    let lastPercentage = 0;
    let began = false;
    let finished = false;

    const report = (value: WorkDoneProgressBegin | WorkDoneProgressReport): void => {
      if (reporter === undefined) {
        return;
      }
      let increment: number | undefined;
      if (typeof value.percentage === 'number' && value.percentage > lastPercentage) {
        increment = value.percentage - lastPercentage;
        lastPercentage = value.percentage;
      }
      reporter.report({ message: value.message, increment });
    };
    const finish = (): void => {
      if (finished) {
        return;
      }
      finished = true;
      subscription.dispose();
      this.active.delete(token);
      resolveDone();
    };

    const subscription = this.client.onProgress(WorkDoneProgress.type, token, (value) => {
      switch (value.kind) {
        case 'begin':
          if (began || finished) {
            return;
          }
          began = true;
          void vscode.window.withProgress(
            {
              location: vscode.ProgressLocation.Notification,
              title: value.title,
              cancellable: value.cancellable === true,
            },
            (progress, cancellation) => {
              reporter = progress;
              cancellation.onCancellationRequested(() => {
                if (finished) {
                  return;
                }
                this.output.info('Rewrite cancelled by the user; telling the server.');
                void this.client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
              });
              report(value);
              return done;
            },
          );
          break;
        case 'report':
          report(value);
          break;
        case 'end':
          if (value.message) {
            this.output.info(value.message);
          }
          finish();
          break;
      }
    });
    this.active.set(token, finish);
  }

  /** Closes every open progress notification (the server stopped). */
  clear(): void {
    for (const finish of [...this.active.values()]) {
      finish();
    }
  }

  dispose(): void {
    this.clear();
  }
}
