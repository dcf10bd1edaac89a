// Shortening multi-line text (tracebacks, server errors) for one-line messages.
// Pure (no `vscode` import) so it can be unit-tested with node:test.

/** The first non-empty line, cut at 300 characters. */
export function firstLine(s: string): string {
  const line = s.split('\n').find((l) => l.trim() !== '') ?? s;
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

/** The last non-empty line (e.g. the exception of a traceback), if any. */
export function lastLine(s: string): string | undefined {
  const lines = s.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines[lines.length - 1];
}
