// A line diff (longest common subsequence) of a region against its rewrite.
// Pure (no `vscode` import) so it can be unit-tested with node:test.

/** Unchanged lines, or a hunk: the original lines it removes and the lines it adds. */
export type Segment =
  | { kind: 'same'; lines: string[] }
  | { kind: 'hunk'; removed: string[]; added: string[] };

/** Cells above which the quadratic table is not built; the rewrite is then one hunk. */
const MAX_CELLS = 4_000_000;

/**
 * The segments that turn `before` into `after` (lines compared exactly, endings included).
 * Hunks are as small as the longest common subsequence allows; consecutive changes form one
 * hunk, so hunks are always separated by at least one unchanged line.
 */
export function diffLines(before: readonly string[], after: readonly string[]): Segment[] {
  // Common prefix and suffix first: cheap, and most rewrites keep much of the region.
  const { head, tail } = commonEnds(before, after);
  const a = before.slice(head, before.length - tail);
  const b = after.slice(head, after.length - tail);
  const middle: Segment[] = [];
  if (a.length > 0 || b.length > 0) {
    if (a.length * b.length > MAX_CELLS || a.length === 0 || b.length === 0) {
      middle.push({ kind: 'hunk', removed: [...a], added: [...b] });
    } else {
      middle.push(...lcsSegments(a, b));
    }
  }
  return merge([
    { kind: 'same', lines: before.slice(0, head) },
    ...middle,
    { kind: 'same', lines: before.slice(before.length - tail) },
  ]);
}

function lcsSegments(a: readonly string[], b: readonly string[]): Segment[] {
  const n = a.length;
  const m = b.length;
  // len[i][j]: LCS length of a[i:] and b[j:], row-major in one array.
  const width = m + 1;
  const len = new Uint32Array((n + 1) * width);
  const cell = (i: number, j: number): number => len[i * width + j] ?? 0;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      len[i * width + j] = a[i] === b[j] ? cell(i + 1, j + 1) + 1 : Math.max(cell(i + 1, j), cell(i, j + 1));
    }
  }
  const out: Segment[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    const x = a[i];
    const y = b[j];
    if (x !== undefined && y !== undefined && x === y) {
      out.push({ kind: 'same', lines: [x] });
      i++;
      j++;
    } else if (x !== undefined && (y === undefined || cell(i + 1, j) >= cell(i, j + 1))) {
      // on a tie, remove first: a hunk reads as its old lines, then its new ones
      out.push({ kind: 'hunk', removed: [x], added: [] });
      i++;
    } else if (y !== undefined) {
      out.push({ kind: 'hunk', removed: [], added: [y] });
      j++;
    }
  }
  return out;
}

/** Joins neighbours of the same kind and drops empty segments. */
function merge(segments: Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    const empty = s.kind === 'same' ? s.lines.length === 0 : s.removed.length + s.added.length === 0;
    if (empty) {
      continue;
    }
    const last = out[out.length - 1];
    if (last?.kind === 'same' && s.kind === 'same') {
      last.lines.push(...s.lines);
    } else if (last?.kind === 'hunk' && s.kind === 'hunk') {
      last.removed.push(...s.removed);
      last.added.push(...s.added);
    } else {
      out.push(s.kind === 'same' ? { kind: 'same', lines: [...s.lines] } : { ...s, removed: [...s.removed], added: [...s.added] });
    }
  }
  return out;
}

/** Lines with their endings (\n, \r\n or \r, as LSP splits them); the last may have none. */
export function splitLines(text: string): string[] {
  return text.match(/[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$/g) ?? [];
}

/** Lines equal at the start (`head`) and, after those, at the end (`tail`) of both lists. */
export function commonEnds(before: readonly string[], after: readonly string[]): { head: number; tail: number } {
  let head = 0;
  while (head < before.length && head < after.length && before[head] === after[head]) {
    head++;
  }
  let tail = 0;
  while (
    tail < before.length - head &&
    tail < after.length - head &&
    before[before.length - 1 - tail] === after[after.length - 1 - tail]
  ) {
    tail++;
  }
  return { head, tail };
}
