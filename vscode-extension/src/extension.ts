// Speculative Edits for VS Code: a thin client over the speculative-edits language server.
//
// Everything that touches the model goes through the server (`python -m lsp_server --stdio`):
// the server offers the code actions, runs the rewrite, applies the edit with
// `workspace/applyEdit` and reports progress with `window/workDoneProgress`. This file only
// starts the server, asks the user for an instruction, forwards it, and shows the server's
// `specedit/status` in the status bar.
import { type ChildProcess, spawn } from 'node:child_process';
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
  type Middleware,
  RevealOutputChannelOn,
  type ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { askForInstruction, clearRecentInstructions } from './instruction';
import { NotificationProgress } from './progress';
import {
  displayPython,
  installCommand,
  onPythonInterpreterChanged,
  probeServer,
  type ProbeResult,
  type PythonCommand,
  resolvePython,
  SERVER_MODULE,
} from './python';
import { SERVER_SETTING_KEYS, serverSettings, type ServerSettings } from './settings';
import {
  type ClientState,
  isServerStatus,
  type ServerStatus,
  type StatusView,
  viewForClientState,
  viewForStatus,
} from './status';

const CLIENT_ID = 'specedit';
const CLIENT_NAME = 'Speculative Edits';
/** Command provided by the server (registered in VS Code by vscode-languageclient). */
const SERVER_REWRITE_COMMAND = 'specedit.rewriteSelection';
/** The extension's own command: palette, context menu, keybinding. */
const INTERACTIVE_REWRITE_COMMAND = 'specedit.rewriteSelectionInteractive';
const STATUS_NOTIFICATION = 'specedit/status';
/** Buttons of this extension's error messages. */
type MessageAction = 'Copy Install Command' | 'Open Settings' | 'Show Log' | 'Retry';
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

function readServerSettings(): ServerSettings {
  const config = vscode.workspace.getConfiguration('specedit');
  return serverSettings((key) => config.get<unknown>(key));
}

class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private lastStatus: ServerStatus | undefined;

  constructor() {
    this.item = vscode.window.createStatusBarItem('specedit.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Speculative Edits';
    this.item.command = 'specedit.showLog';
    this.setClientState('starting');
    this.item.show();
  }

  /** Applies a `specedit/status` notification. */
  setServerStatus(status: ServerStatus): void {
    const previous = this.lastStatus;
    // Keep the last rewrite's numbers while the same model is loaded, even when a later
    // notification (e.g. "busy" then "ready") does not repeat them.
    const keepStats =
      status.lastRewrite === undefined &&
      previous?.lastRewrite !== undefined &&
      previous.model === status.model;
    const merged: ServerStatus = keepStats ? { ...status, lastRewrite: previous.lastRewrite } : status;
    this.lastStatus = merged;
    this.render(viewForStatus(merged));
  }

  setClientState(state: ClientState, detail?: string): void {
    this.lastStatus = undefined;
    this.render(viewForClientState(state, detail));
  }

  private render(view: StatusView): void {
    this.item.text = view.text;
    const tooltip = new vscode.MarkdownString(view.tooltip);
    tooltip.supportThemeIcons = true;
    this.item.tooltip = tooltip;
    this.item.accessibilityInformation = { label: view.ariaLabel, role: 'button' };
    this.item.backgroundColor = view.isError
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

class SpecEditClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private serverProcess: ChildProcess | undefined;
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
    const child = this.serverProcess;
    this.serverProcess = undefined;
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
    const configured = vscode.workspace.getConfiguration('specedit').get<string>('pythonPath') ?? '';
    const python = await resolvePython(configured, folder);
    this.output.info(`Python: ${displayPython(python)} (from ${python.source}); working folder: ${cwd}`);

    const probe = await probeServer(python, cwd);
    if (!probe.ok) {
      this.reportStartFailure(python, probe);
      return false;
    }

    // Spawned here rather than by vscode-languageclient so that the end of the server's
    // stderr (a traceback's last line, say) can go into the message when it fails to start.
    let stderrTail = '';
    const serverOptions: ServerOptions = () =>
      new Promise<ChildProcess>((resolve, reject) => {
        const child = spawn(python.command, [...python.args, '-m', SERVER_MODULE, '--stdio'], {
          cwd,
          env: { ...process.env, PYTHONUNBUFFERED: '1' },
          stdio: 'pipe',
          windowsHide: true,
        });
        this.serverProcess = child;
        child.stderr.on('data', (data: Buffer) => {
          stderrTail = (stderrTail + data.toString('utf8')).slice(-8_000);
        });
        child.once('spawn', () => {
          resolve(child);
        });
        child.once('error', reject);
      });
    let initialized = false;
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      traceOutputChannel: this.traceOutput,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: readServerSettings(),
      middleware: this.middleware(),
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

    const client = new QuietLanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
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
      const child = this.serverProcess;
      this.serverProcess = undefined;
      await client.dispose(2_000).catch(() => undefined);
      killIfAlive(child);
      this.reportStartFailure(python, {
        ok: false,
        reason: 'failed',
        detail: lastLine(stderrTail) ?? failure,
      });
      return false;
    }
    initialized = true;
    // After start(): the client installs its own (status-bar) progress handler while starting.
    this.progress = new NotificationProgress(client, this.output);
    this.progress.install();
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
    void this.showError(
      'Speculative Edits: the language server stopped several times in a row and will not be restarted. See the log for why.',
      ['Show Log', 'Retry'],
    );
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private reportStartFailure(python: PythonCommand, probe: Exclude<ProbeResult, { ok: true }>): void {
    const install = installCommand(python);
    let message: string;
    let actions: MessageAction[];
    switch (probe.reason) {
      case 'no-python':
        message =
          `Speculative Edits: cannot start the language server: the Python interpreter "${displayPython(python)}" ` +
          `(from ${python.source}) was not found. Install Python 3.10+ and then the server with: ${install} ` +
          `— or point the setting specedit.pythonPath at a Python that has it.`;
        actions = ['Open Settings', 'Copy Install Command', 'Retry'];
        break;
      case 'no-package':
        message =
          `Speculative Edits: the language server is not installed for "${displayPython(python)}" ` +
          `(from ${python.source}). Install it with: ${install}`;
        actions = ['Copy Install Command', 'Open Settings', 'Retry'];
        break;
      case 'failed':
        message =
          `Speculative Edits: the language server did not start with "${displayPython(python)}": ` +
          `${firstLine(probe.detail)}. See the log; to (re)install it: ${install}`;
        actions = ['Show Log', 'Copy Install Command', 'Retry'];
        break;
    }
    this.output.error(message);
    if (probe.detail) {
      this.output.error(probe.detail);
    }
    this.statusBar.setClientState('stopped', message);
    void this.showError(message, actions, install);
  }

  private async showError(message: string, actions: MessageAction[], install?: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, ...actions);
    switch (choice) {
      case 'Copy Install Command':
        if (install) {
          await vscode.env.clipboard.writeText(install);
        }
        break;
      case 'Open Settings':
        await vscode.commands.executeCommand('workbench.action.openSettings', 'specedit');
        break;
      case 'Show Log':
        this.showLog();
        break;
      case 'Retry':
        await this.restart();
        break;
      case undefined:
        break;
    }
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

  private middleware(): Middleware {
    return {
      // The server's `specedit.rewriteSelection` (from the light bulb or from our own
      // command) needs an instruction: ask for it unless it is already there.
      executeCommand: async (command, args, next) => {
        if (command !== SERVER_REWRITE_COMMAND) {
          return (await next(command, args)) as unknown;
        }
        const first: unknown = args[0];
        const base =
          typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
        let instruction = typeof base.instruction === 'string' ? base.instruction.trim() : '';
        if (instruction === '') {
          const asked = await askForInstruction(this.context.globalState);
          if (asked === undefined) {
            return undefined; // escaped: nothing is sent
          }
          instruction = asked;
        }
        try {
          const rest: unknown[] = args.slice(1);
          return (await next(command, [{ ...base, instruction }, ...rest])) as unknown;
        } catch (error) {
          if (isCancellation(error)) {
            this.output.info('Rewrite cancelled.');
            return undefined;
          }
          const message = error instanceof Error ? error.message : String(error);
          this.output.error(`Rewrite failed: ${message}`);
          void this.showError(`Speculative Edits: the rewrite failed: ${firstLine(message)}`, ['Show Log']);
          return undefined;
        }
      },
      workspace: {
        // Answer `workspace/configuration` for section `specedit` with the same object
        // that `initializationOptions` and `didChangeConfiguration` carry.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) {
            return result;
          }
          return params.items.map((item, i): unknown =>
            item.section === 'specedit' ? readServerSettings() : result[i],
          );
        },
      },
    };
  }

  /** The palette / context-menu / keybinding command: rewrite the active editor's selection. */
  async rewriteSelectionInteractive(): Promise<void> {
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
    const client = await this.ready();
    if (!client) {
      return; // reportStartFailure() has said why
    }
    const instruction = await askForInstruction(this.context.globalState);
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
      void this.showError(
        `Speculative Edits: the language server does not offer the command ${SERVER_REWRITE_COMMAND}; is it an older version?`,
        ['Show Log'],
      );
      return;
    }
    // Goes through the client-registered command, i.e. the middleware above, to the server.
    await vscode.commands.executeCommand(SERVER_REWRITE_COMMAND, argument);
  }

  dispose(): void {
    this.statusBar.dispose();
    this.traceOutput.dispose();
    this.output.dispose();
  }
}

/** A request the user (or the server) cancelled: vscode-languageclient throws CancellationError. */
function isCancellation(error: unknown): boolean {
  return (
    error instanceof vscode.CancellationError ||
    (error instanceof Error && (error.name === 'Canceled' || error.name === 'LSPCancellationError'))
  );
}

/** The last non-empty line (e.g. the exception of a traceback), if any. */
function lastLine(s: string): string | undefined {
  const lines = s.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines[lines.length - 1];
}

/** Ends a server process that did not exit after shutdown/exit. */
function killIfAlive(child: ChildProcess | undefined): void {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  }, 2_000).unref();
}

function firstLine(s: string): string {
  const line = s.split('\n').find((l) => l.trim() !== '') ?? s;
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

let specEdit: SpecEditClient | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const ext = new SpecEditClient(context);
  specEdit = ext;
  context.subscriptions.push(
    ext,
    vscode.commands.registerCommand(INTERACTIVE_REWRITE_COMMAND, () => ext.rewriteSelectionInteractive()),
    vscode.commands.registerCommand('specedit.showLog', () => {
      ext.showLog();
    }),
    vscode.commands.registerCommand('specedit.restartServer', () => ext.restart()),
    vscode.commands.registerCommand('specedit.clearRecentInstructions', () =>
      clearRecentInstructions(context.globalState),
    ),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('specedit.pythonPath')) {
        void ext.restart();
      } else if (SERVER_SETTING_KEYS.some((k) => e.affectsConfiguration(`specedit.${k}`))) {
        void ext.pushSettings();
      }
    }),
  );
  void onPythonInterpreterChanged(() => {
    const configured = vscode.workspace.getConfiguration('specedit').get<string>('pythonPath') ?? '';
    if (configured.trim() === '') {
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
