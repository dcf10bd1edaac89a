// The language server's process: `<python> -m lsp_server --stdio`.
//
// Spawned here rather than by vscode-languageclient so that the end of the server's stderr (a
// traceback's last line, say) can go into the message when it fails to start, and so that a
// server that ignores shutdown/exit can be killed.
import { type ChildProcess, spawn } from 'node:child_process';
import type { ServerOptions } from 'vscode-languageclient/node';
import { type PythonCommand, SERVER_MODULE } from './python';
import { lastLine } from './text';

export class ServerProcess {
  /** The spawned process, once vscode-languageclient has asked for it. */
  child: ChildProcess | undefined;
  private stderrTail = '';

  constructor(
    private readonly python: PythonCommand,
    /** The server's working folder: a relative `specedit.model` path is taken from here. */
    private readonly cwd: string,
  ) {}

  /** What vscode-languageclient calls to start the server. */
  readonly serverOptions: ServerOptions = () =>
    new Promise<ChildProcess>((resolve, reject) => {
      const child = spawn(this.python.command, [...this.python.args, '-m', SERVER_MODULE, '--stdio'], {
        cwd: this.cwd,
        env: { ...process.env, PYTHONUNBUFFERED: '1' },
        stdio: 'pipe',
        windowsHide: true,
      });
      this.child = child;
      child.stderr.on('data', (data: Buffer) => {
        this.stderrTail = (this.stderrTail + data.toString('utf8')).slice(-8_000);
      });
      child.once('spawn', () => {
        resolve(child);
      });
      child.once('error', reject);
    });

  /** The last line the server wrote to stderr, if any. */
  lastStderrLine(): string | undefined {
    return lastLine(this.stderrTail);
  }
}

/** Ends a server process that did not exit after shutdown/exit. */
export function killIfAlive(child: ChildProcess | undefined): void {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
    }
  }, 2_000).unref();
}
