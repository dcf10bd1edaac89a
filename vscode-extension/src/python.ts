// Finds the Python interpreter that runs the language server and checks that the server
// package is importable, so that a missing Python or package gives one clear message.
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';

export interface PythonCommand {
  /** Executable to spawn. */
  command: string;
  /** Arguments that come before `-m lsp_server` (e.g. for `conda run`). */
  args: string[];
  /** Where the interpreter came from, for messages. */
  source: string;
}

// The slice of the Python extension's API (ms-python.python) that is used here.
interface PythonEnvironmentPath {
  id: string;
  path: string;
}
interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): PythonEnvironmentPath;
    resolveEnvironment(
      env: PythonEnvironmentPath | string,
    ): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
    onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
  };
  settings?: {
    getExecutionDetails?(resource?: vscode.Uri): { execCommand: string[] | undefined };
  };
}

export const PYTHON_EXTENSION_ID = 'ms-python.python';
export const DEFAULT_PYTHON = 'python3';
export const SERVER_MODULE = 'lsp_server';
export const PIP_PACKAGE = 'speculative-edits';

async function pythonExtensionApi(): Promise<PythonExtensionApi | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
  if (!ext) {
    return undefined;
  }
  try {
    return ext.isActive ? ext.exports : await ext.activate();
  } catch {
    return undefined;
  }
}

/** Subscribes to the Python extension's interpreter changes, if it is installed. */
export async function onPythonInterpreterChanged(
  listener: () => void,
): Promise<vscode.Disposable | undefined> {
  const api = await pythonExtensionApi();
  const event = api?.environments?.onDidChangeActiveEnvironmentPath;
  return event ? event(() => { listener(); }) : undefined;
}

function expandPath(p: string, workspaceFolder: string | undefined): string {
  let out = p.trim();
  if (out === '~' || out.startsWith('~/')) {
    out = path.join(os.homedir(), out.slice(1));
  }
  if (workspaceFolder) {
    out = out.split('${workspaceFolder}').join(workspaceFolder);
  }
  return out;
}

/**
 * `specedit.pythonPath` if set, else the Python extension's selected interpreter, else `python3`.
 */
export async function resolvePython(
  configured: string,
  workspaceFolder: vscode.WorkspaceFolder | undefined,
): Promise<PythonCommand> {
  if (configured.trim() !== '') {
    return {
      command: expandPath(configured, workspaceFolder?.uri.fsPath),
      args: [],
      source: 'the setting specedit.pythonPath',
    };
  }
  const api = await pythonExtensionApi();
  const resource = workspaceFolder?.uri;
  if (api?.environments) {
    try {
      const envPath = api.environments.getActiveEnvironmentPath(resource);
      const env = await api.environments.resolveEnvironment(envPath);
      const exe = env?.executable.uri?.fsPath;
      if (exe) {
        return { command: exe, args: [], source: 'the Python extension' };
      }
    } catch {
      // fall through to the older API
    }
  }
  const exec = api?.settings?.getExecutionDetails?.(resource).execCommand;
  if (exec && exec.length > 0 && exec[0]) {
    return { command: exec[0], args: exec.slice(1), source: 'the Python extension' };
  }
  return { command: DEFAULT_PYTHON, args: [], source: 'the default' };
}

export type ProbeResult =
  | { ok: true }
  | { ok: false; reason: 'no-python' | 'no-package' | 'failed'; detail: string };

/** Checks that `python -m lsp_server` would find the server package (without starting it). */
export function probeServer(py: PythonCommand, cwd: string): Promise<ProbeResult> {
  // `python -m lsp_server` needs lsp_server/__main__.py; finding it imports only the
  // package's __init__ (an empty folder on sys.path would pass a plain find_spec).
  const module = JSON.stringify(SERVER_MODULE);
  const code = [
    'import importlib.util, sys',
    'try:',
    `    ok = importlib.util.find_spec(${module}) is not None and importlib.util.find_spec(${module} + ".__main__") is not None`,
    'except ModuleNotFoundError:',
    '    ok = False',
    'sys.exit(0 if ok else 3)',
  ].join('\n');
  return new Promise((resolve) => {
    execFile(
      py.command,
      [...py.args, '-c', code],
      { cwd, timeout: 60_000, windowsHide: true },
      (error, _stdout, stderr) => {
        if (!error) {
          resolve({ ok: true });
          return;
        }
        // execFile's error: `code` is the errno string when spawning failed, the exit status otherwise.
        const code: unknown = (error as { code?: unknown }).code;
        if (code === 'ENOENT' || code === 'EACCES') {
          resolve({ ok: false, reason: 'no-python', detail: error.message });
        } else if (code === 3) {
          resolve({ ok: false, reason: 'no-package', detail: stderr.trim() });
        } else {
          resolve({ ok: false, reason: 'failed', detail: (stderr.trim() || error.message).slice(0, 2000) });
        }
      },
    );
  });
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command a user runs to install the server for this interpreter. */
export function installCommand(py: PythonCommand): string {
  return [py.command, ...py.args, '-m', 'pip', 'install', PIP_PACKAGE].map(shellQuote).join(' ');
}

export function displayPython(py: PythonCommand): string {
  return [py.command, ...py.args].join(' ');
}
