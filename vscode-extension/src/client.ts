// The language client's lifecycle: find the Python, check the server is installed, start the
// server, restart it after a crash (a few times), stop it, and push settings to it.
import * as os from 'node:os';
import * as vscode from 'vscode';
import {
  CloseAction,
  type CloseHandlerResult,
  DidChangeConfigurationNotification,
  ErrorAction,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  LanguageClient,
  MessageType,
  RevealOutputChannelOn,
  ShowMessageNotification,
  State,
} from 'vscode-languageclient/node';
import { configuredPythonPath, readServerSettings } from './config';
import { CLIENT_ID, CLIENT_NAME, STATUS_NOTIFICATION } from './ids';
import { Messages, startFailure } from './messages';
import { middleware } from './middleware';
import { Notices } from './notices';
import { PresetsAsCommands } from './presetActions';
import { ReviewController } from './review';
import { NotificationProgress } from './progress';
import { displayPython, probeServer, type ProbeResult, type PythonCommand, resolvePython } from './python';
import { RunningRewrites } from './runningRewrites';
import { killIfAlive, ServerProcess } from './serverProcess';
import { StatusBar } from './statusBar';
import { isServerStatus } from './status';

/** Restarts allowed within RESTART_WINDOW_MS after the server dies, before giving up. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 3 * 60_000;

/**
 * All error reporting goes through this extension's own messages (one per problem, with the
 * actions that fix it); vscode-languageclient's own pop-ups, some of which it forces even with
 * `revealOutputChannelOn: Never`, would double them. The log still gets every line.
 */
class QuietLanguageClient extends LanguageClient {
  override error(message: string, data?: unknown): void {
    super.error(message, data, false);
  }
}

export class SpecEditClient implements vscode.Disposable {
  readonly messages: Messages;
  readonly notices: Notices;
  readonly running: RunningRewrites;
  readonly review: ReviewController;
  private client: LanguageClient | undefined;
  private server: ServerProcess | undefined;
  private progress: NotificationProgress | undefined;
  /** Resolves to whether the server is running; pending while (re)starting. */
  private starting: Promise<boolean> | undefined;
  private restartTimes: number[] = [];
  private readonly output: vscode.LogOutputChannel;
  private readonly traceOutput: vscode.OutputChannel;
  private readonly statusBar: StatusBar;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel(CLIENT_NAME, { log: true });
    this.traceOutput = vscode.window.createOutputChannel(`${CLIENT_NAME} Trace`);
    this.statusBar = new StatusBar();
    this.messages = new Messages(this.output, () => this.restart());
    this.notices = new Notices(this.output);
    this.running = new RunningRewrites();
    this.review = new ReviewController({
      output: this.output,
      messages: this.messages,
      notices: this.notices,
      running: this.running,
      showState: (state) => {
        this.statusBar.setReview(state);
      },
    });
  }

  showLog(): void {
    this.output.show(true);
  }

  /** Starts the server unless it is running or starting. Resolves to whether it runs. */
  start(): Promise<boolean> {
    if (this.client?.state === State.Running) {
      return Promise.resolve(true);
    }
    this.starting ??= this.doStart().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** A user's restart: also forgets earlier crashes. */
  async restart(): Promise<boolean> {
    this.restartTimes = [];
    return this.relaunch();
  }

  private async relaunch(): Promise<boolean> {
    await this.starting;
    await this.stop();
    return this.start();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client === undefined) {
      return;
    }
    const child = this.server?.child;
    this.server = undefined;
    this.progress?.dispose();
    this.progress = undefined;
    try {
      await client.dispose(5_000); // shutdown + exit if it runs
    } catch (error) {
      this.output.warn(`Stopping the server: ${String(error)}`);
    }
    killIfAlive(child);
    this.statusBar.setClientState('stopped', 'Stopped.');
  }

  /** The running client, starting it first if needed; undefined (with a message shown) if it cannot run. */
  async ready(): Promise<LanguageClient | undefined> {
    const ok = await this.start();
    return ok ? this.client : undefined;
  }

  /** Sends the current `specedit` settings to the running server. */
  async pushSettings(): Promise<void> {
    const client = this.client;
    if (client?.state !== State.Running) {
      return;
    }
    const settings = readServerSettings();
    this.output.info(`Settings changed: ${JSON.stringify(settings)}`);
    await client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { specedit: settings },
    });
  }

  private async doStart(): Promise<boolean> {
    this.statusBar.setClientState('starting');
    const folder = vscode.workspace.workspaceFolders?.[0];
    // The server runs in the first workspace folder, so that a relative `specedit.model`
    // path means the same to it as to the user.
    const cwd = folder?.uri.fsPath ?? os.homedir();
    const python = await resolvePython(configuredPythonPath(), folder);
    this.output.info(`Python: ${displayPython(python)} (from ${python.source}); working folder: ${cwd}`);

    const probe = await probeServer(python, cwd);
    if (!probe.ok) {
      this.reportStartFailure(python, probe);
      return false;
    }

    const server = new ServerProcess(python, cwd);
    this.server = server;
    let initialized = false;
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      traceOutputChannel: this.traceOutput,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: readServerSettings(),
      middleware: middleware({
        state: this.context.globalState,
        output: this.output,
        messages: this.messages,
        notices: this.notices,
        review: this.review,
        running: this.running,
        client: () => (this.client === client && client.state === State.Running ? client : undefined),
        progress: () => (this.client === client ? this.progress : undefined),
      }),
      initializationFailedHandler: (error: unknown) => {
        this.output.error(`Initialization failed: ${String(error)}`);
        return false;
      },
      errorHandler: {
        error: (_error, _message, count): ErrorHandlerResult => ({
          action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
          handled: true,
        }),
        closed: (): CloseHandlerResult => this.onServerClosed(initialized),
      },
    };

    const client = new QuietLanguageClient(CLIENT_ID, CLIENT_NAME, server.serverOptions, clientOptions);
    client.registerFeature(new PresetsAsCommands());
    this.client = client;
    client.onDidChangeState((e) => {
      if (e.newState === State.Stopped && this.client === client && initialized) {
        this.statusBar.setClientState('stopped', 'The language server stopped.');
      }
    });
    client.onNotification(STATUS_NOTIFICATION, (params: unknown) => {
      this.onStatus(params);
    });
    let failure: string | undefined;
    try {
      await client.start();
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    // start() can resolve although initialization failed (the client stops itself meanwhile).
    if (failure === undefined && client.state !== State.Running) {
      failure = 'the server stopped during initialization';
    }
    if (failure !== undefined) {
      this.client = undefined;
      this.server = undefined;
      await client.dispose(2_000).catch(() => undefined);
      killIfAlive(server.child);
      this.reportStartFailure(python, {
        ok: false,
        reason: 'failed',
        detail: server.lastStderrLine() ?? failure,
      });
      return false;
    }
    initialized = true;
    // After start(): the client installs its own (status-bar) progress handler while starting.
    this.progress = new NotificationProgress(client, this.output);
    this.progress.install();
    // Also after start(), replacing the client's own handler: the server's warnings and notes
    // are about one rewrite, and must not stay on screen over the next (notices.ts).
    client.onNotification(ShowMessageNotification.type, (params) => {
      if (params.type === MessageType.Error) {
        void vscode.window.showErrorMessage(params.message);
      } else {
        this.notices.show(params.type === MessageType.Warning ? 'warning' : 'info', params.message);
      }
    });
    this.output.info('Language server started.');
    return true;
  }

  private onServerClosed(initialized: boolean): CloseHandlerResult {
    if (!initialized) {
      // start() rejects and reportStartFailure() explains; no automatic restarts.
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    const now = Date.now();
    this.restartTimes = [...this.restartTimes.filter((t) => now - t < RESTART_WINDOW_MS), now];
    if (this.restartTimes.length <= MAX_RESTARTS) {
      this.output.warn('The language server stopped; restarting it.');
      this.statusBar.setClientState('starting', 'The server stopped; restarting it.');
      // A fresh client rather than CloseAction.Restart, so that doStart() sets it up fully.
      setTimeout(() => void this.relaunch(), 500);
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.statusBar.setClientState('stopped', 'The server stopped repeatedly.');
    void this.messages.showError(
      'Speculative Edits: the language server stopped several times in a row and will not be restarted. See the log for why.',
      ['Show Log', 'Retry'],
    );
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private reportStartFailure(python: PythonCommand, probe: Exclude<ProbeResult, { ok: true }>): void {
    const { message, actions, install } = startFailure(python, probe);
    this.output.error(message);
    if (probe.detail) {
      this.output.error(probe.detail);
    }
    this.statusBar.setClientState('stopped', message);
    void this.messages.showError(message, actions, install);
  }

  private onStatus(params: unknown): void {
    if (!isServerStatus(params)) {
      this.output.warn(`Ignoring a malformed ${STATUS_NOTIFICATION}: ${JSON.stringify(params)}`);
      return;
    }
    // An error (a model that fails to load, say) turns the item red; the server itself says
    // why with window/showMessage, so no second pop-up here.
    this.statusBar.setServerStatus(params);
  }

  dispose(): void {
    this.review.dispose();
    this.running.dispose();
    this.notices.dispose();
    this.statusBar.dispose();
    this.traceOutput.dispose();
    this.output.dispose();
  }
}
