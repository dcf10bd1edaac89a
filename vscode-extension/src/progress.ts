// Server-initiated work-done progress as a cancellable notification.
//
// vscode-languageclient shows a server's `window/workDoneProgress` in the status bar
// (ProgressLocation.Window), where VS Code offers no Cancel. A rewrite takes seconds to
// minutes, so this extension answers `window/workDoneProgress/create` itself and shows the
// progress as a notification whose Cancel sends `window/workDoneProgress/cancel`. It shows the
// same for a token the extension made itself and sent with a rewrite (`track`), which it can
// then cancel from elsewhere too (`cancel`: the status bar, the editor's title bar).
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

/** One progress on screen (or about to be): how to end it and how to cancel its work. */
interface Tracked {
  finish: () => void;
  cancel: () => void;
}

export class NotificationProgress implements vscode.Disposable {
  private readonly active = new Map<ProgressToken, Tracked>();

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
      this.track(params.token);
    });
  }

  /** Shows the progress the server reports under `token` (one it created, or the client's own). */
  track(token: ProgressToken): void {
    this.active.get(token)?.finish();
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    let reporter: vscode.Progress<{ message?: string; increment?: number }> | undefined;
    let lastPercentage = 0;
    let began = false;
    let finished = false;
    let cancelled = false;
    // The server knows the token only once it has begun: a cancel before that waits for it.
    const cancel = (): void => {
      if (finished || cancelled) {
        return;
      }
      cancelled = true;
      if (began) {
        tellServer();
      }
    };
    const tellServer = (): void => {
      this.output.info('Rewrite cancelled by the user; telling the server.');
      void this.client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
    };

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
          if (cancelled) {
            tellServer();
          }
          void vscode.window.withProgress(
            {
              location: vscode.ProgressLocation.Notification,
              title: value.title,
              cancellable: value.cancellable === true,
            },
            (progress, cancellation) => {
              reporter = progress;
              cancellation.onCancellationRequested(cancel);
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
    this.active.set(token, { finish, cancel });
  }

  /** Asks the server to stop the work reported under `token`; its notification ends with it. */
  cancel(token: ProgressToken): void {
    this.active.get(token)?.cancel();
  }

  /** Stops showing `token`'s progress, if it is still on (the work ended without `end`). */
  release(token: ProgressToken): void {
    this.active.get(token)?.finish();
  }

  /** Closes every open progress notification (the server stopped). */
  clear(): void {
    for (const { finish } of [...this.active.values()]) {
      finish();
    }
  }

  dispose(): void {
    this.clear();
  }
}
