// What a rewrite under review shows in the document, and the text each choice leaves.
// Pure (no `vscode` import) so it can be unit-tested with node:test.
//
// The region (the whole lines being rewritten) is shown as its original lines, with each hunk
// of the rewrite as its removed lines followed by its added lines. While the rewrite decodes,
// original lines the output has not reached yet are shown plain after it. When it is done,
// each hunk is accepted or rejected; the region's final text is the unchanged lines plus, per
// hunk, the added lines if accepted and the removed lines otherwise.
import { commonEnds, diffLines, type Segment, splitLines } from './lineDiff';

export type LineMark = 'same' | 'removed' | 'added';
export type Decision = 'pending' | 'accepted' | 'rejected';

export interface Rendered {
  /** The region as shown, line by line with endings. */
  lines: string[];
  marks: LineMark[];
  /** For each pending hunk (by hunk index), the index in `lines` of its first shown line. */
  hunkStarts: Map<number, number>;
}

/** One replacement of whole lines: `deleteCount` lines from `start` become `insert`. */
export interface LineReplacement {
  start: number;
  deleteCount: number;
  insert: string[];
}

export class ReviewModel {
  private segments: Segment[] = [];
  private decisions: Decision[] = [];
  /** Original lines the output has not reached yet (streaming only). */
  private notReached: string[];
  /** The last line of the output so far while it has no line ending yet (streaming only). */
  private inProgress: string | undefined;
  private finished = false;

  /**
   * @param original the region's lines, with endings, as in the document
   * @param eol the document's line ending, for the output's `\n`s and for display
   */
  constructor(
    readonly original: readonly string[],
    private readonly eol: string,
  ) {
    this.notReached = [...original];
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** The output so far (`\n` line endings, may end mid-line) and how much of the region it covers (0..1). */
  stream(text: string, covered: number | null): void {
    if (this.finished) {
      return;
    }
    const lines = splitLines(text.replace(/\r\n|\r|\n/g, this.eol));
    const last = lines[lines.length - 1];
    this.inProgress = last !== undefined && !/[\r\n]$/.test(last) ? lines.pop() : undefined;
    const reached = typeof covered === 'number' && Number.isFinite(covered)
      ? Math.max(0, Math.min(this.original.length, Math.floor(covered * this.original.length + 1e-9)))
      : lastMatchedLine(this.original, lines);
    this.segments = diffLines(this.original.slice(0, reached), lines);
    this.notReached = this.original.slice(reached);
    this.decisions = this.segments.filter((s) => s.kind === 'hunk').map(() => 'pending');
  }

  /** The whole rewrite of the region (as the server's edit leaves it): every hunk pending. */
  finish(text: string): void {
    this.segments = diffLines(this.original, splitLines(text));
    this.decisions = this.segments.filter((s) => s.kind === 'hunk').map(() => 'pending');
    this.notReached = [];
    this.inProgress = undefined;
    this.finished = true;
  }

  get hunkCount(): number {
    return this.decisions.length;
  }

  pendingHunks(): number[] {
    return this.decisions.flatMap((d, i) => (d === 'pending' ? [i] : []));
  }

  decide(hunk: number, decision: Exclude<Decision, 'pending'>): void {
    if (!this.finished) {
      throw new Error('the rewrite is still running: wait for it to finish');
    }
    if (this.decisions[hunk] !== 'pending') {
      throw new Error(`hunk ${hunk + 1} is not pending`);
    }
    this.decisions[hunk] = decision;
  }

  decideAll(decision: Exclude<Decision, 'pending'>): void {
    for (const i of this.pendingHunks()) {
      this.decisions[i] = decision;
    }
  }

  /** The region's text with the decisions so far; pending hunks count as rejected. */
  result(): string {
    const out: string[] = [];
    let h = 0;
    for (const s of this.segments) {
      if (s.kind === 'same') {
        out.push(...s.lines);
      } else {
        out.push(...(this.decisions[h++] === 'accepted' ? s.added : s.removed));
      }
    }
    out.push(...this.notReached);
    return out.join('');
  }

  render(): Rendered {
    const lines: string[] = [];
    const marks: LineMark[] = [];
    const hunkStarts = new Map<number, number>();
    const push = (ls: readonly string[], mark: LineMark): void => {
      for (const l of ls) {
        lines.push(l);
        marks.push(mark);
      }
    };
    let h = 0;
    for (const s of this.segments) {
      if (s.kind === 'same') {
        push(s.lines, 'same');
        continue;
      }
      const decision = this.decisions[h];
      if (decision === 'pending') {
        hunkStarts.set(h, lines.length);
        push(s.removed, 'removed');
        push(s.added, 'added');
      } else {
        push(decision === 'accepted' ? s.added : s.removed, 'same');
      }
      h++;
    }
    if (this.inProgress !== undefined) {
      push([this.inProgress], 'added');
    }
    push(this.notReached, 'same');
    // Display only: a line shown above another needs an ending, or the two would be glued
    // (a last line without one, an output line still being written).
    const regionEnds = /[\r\n]$/.test(this.original[this.original.length - 1] ?? '');
    lines.forEach((line, i) => {
      if (!/[\r\n]$/.test(line) && (i < lines.length - 1 || regionEnds)) {
        lines[i] = line + this.eol;
      }
    });
    return { lines, marks, hunkStarts };
  }
}

/** Lines after the last original line the output has matched: the part it has reached. */
function lastMatchedLine(original: readonly string[], output: readonly string[]): number {
  let reached = 0;
  let i = 0;
  for (const s of diffLines(original, output)) {
    i += s.kind === 'same' ? s.lines.length : s.removed.length;
    if (s.kind === 'same') {
      reached = i;
    }
  }
  return reached;
}

/** The smallest replacement of whole lines that turns `before` into `after`. */
export function lineReplacement(before: readonly string[], after: readonly string[]): LineReplacement | undefined {
  const { head, tail } = commonEnds(before, after);
  if (head === before.length && head === after.length) {
    return undefined;
  }
  return { start: head, deleteCount: before.length - head - tail, insert: after.slice(head, after.length - tail) };
}

/** An LSP TextEdit's shape (positions in UTF-16 code units, as JavaScript strings count). */
export interface PlainTextEdit {
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  newText: string;
}

/**
 * The region's text after `edits` (the server's answer, for the document as it was when
 * asked). Refuses an edit that reaches outside the region: nothing outside it may change.
 */
export function applyToRegion(region: readonly string[], startLine: number, edits: readonly PlainTextEdit[]): string {
  const starts: number[] = [];
  let total = 0;
  for (const l of region) {
    starts.push(total);
    total += l.length;
  }
  const offset = (p: { line: number; character: number }): number => {
    const i = p.line - startLine;
    const line = region[i];
    const start = starts[i];
    if (line !== undefined && start !== undefined && p.character <= line.replace(/[\r\n]+$/, '').length) {
      return start + p.character;
    }
    if (i === region.length && p.character === 0) {
      return total;
    }
    throw new Error(`the server's edit reaches outside the selected lines (line ${p.line + 1})`);
  };
  const spans = edits
    .map((e) => ({ from: offset(e.range.start), to: offset(e.range.end), text: e.newText }))
    .sort((x, y) => y.from - x.from);
  let text = region.join('');
  let limit = total;
  for (const s of spans) {
    if (s.to < s.from || s.to > limit) {
      throw new Error("the server's edits overlap");
    }
    text = text.slice(0, s.from) + s.text + text.slice(s.to);
    limit = s.from;
  }
  return text;
}

/** A document change as far as the review cares: the lines it replaced and its new text. */
export interface LineChange {
  startLine: number;
  endLine: number;
  text: string;
}

/**
 * How the user's own edits during a review affect the region (lines [start, start + length)):
 * edits wholly above it move it by the lines they add or remove, edits below leave it alone,
 * and any edit that touches it ends the review (`inside`).
 */
export function regionAfterChanges(start: number, length: number, changes: readonly LineChange[]): number | 'inside' {
  let shift = 0;
  for (const c of changes) {
    if (c.endLine < start) {
      shift += (c.text.match(/\r\n|\r|\n/g)?.length ?? 0) - (c.endLine - c.startLine);
    } else if (c.startLine < start + length) {
      return 'inside';
    }
  }
  return start + shift;
}
