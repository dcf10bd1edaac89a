// One rewrite under review: its model (reviewModel.ts) and the region of the document it
// writes. Every write replaces only the lines that differ from what the region shows, and all
// of them go into one undo group: the first opens it (undoStopBefore), later ones join it,
// the last closes it (undoStopAfter), so one undo after the review restores the original.
import * as vscode from 'vscode';
import { splitLines } from './lineDiff';
import { lineReplacement, ReviewModel } from './reviewModel';

/** What a session needs from whoever runs the review. */
export interface SessionOwner {
  /** > 0 while the review's own edit is applied (its change events are not the user's). */
  ownEdits: number;
  /** Redraws the decorations once the region shows the model's current view. */
  decorate(session: Session): void;
}

export class Session {
  readonly model: ReviewModel;
  readonly cancel = new vscode.CancellationTokenSource();
  /** What the region shows now, line by line (what the review last wrote). */
  shown: string[];
  startLine: number;
  /** The review's first write opens the undo group; its last closes it. */
  wroteAny = false;
  ended = false;
  stats = '';
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    readonly document: vscode.TextDocument,
    startLine: number,
    original: string[],
    private readonly owner: SessionOwner,
  ) {
    this.startLine = startLine;
    this.shown = [...original];
    this.model = new ReviewModel(original, document.eol === vscode.EndOfLine.CRLF ? '\r\n' : '\n');
  }

  get uri(): string {
    return this.document.uri.toString();
  }

  /** Every write, the first included, waits for `ready` (the Cancel lens, review.ts). */
  holdWritesUntil(ready: Promise<void>): void {
    this.writing = this.writing.then(() => ready);
  }

  /** Writes the model's current view, coalescing bursts; resolves once the document shows it. */
  show(final = false): Promise<void> {
    if (final) {
      const target = splitLines(this.model.result());
      this.writing = this.writing.then(() => this.write(target, true));
      return this.writing;
    }
    if (this.dirty) {
      return this.writing;
    }
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      if (this.ended) {
        return;
      }
      await this.write(this.model.render().lines, false);
      this.owner.decorate(this);
    });
    return this.writing;
  }

  private async write(target: string[], closeGroup: boolean): Promise<void> {
    const change = lineReplacement(this.shown, target);
    if (change === undefined && !(closeGroup && this.wroteAny)) {
      this.shown = target;
      return;
    }
    const editor = vscode.window.visibleTextEditors.find((e) => e.document === this.document);
    const doc = this.document;
    const at = (i: number): vscode.Position =>
      this.startLine + i < doc.lineCount ? new vscode.Position(this.startLine + i, 0) : doc.lineAt(doc.lineCount - 1).range.end;
    const range = change
      ? new vscode.Range(at(change.start), at(change.start + change.deleteCount))
      : new vscode.Range(at(0), at(0));
    const text = change ? change.insert.join('') : '';
    const options = { undoStopBefore: !this.wroteAny, undoStopAfter: closeGroup };
    this.owner.ownEdits++;
    let ok: boolean;
    try {
      if (editor) {
        ok = await editor.edit((b) => {
          b.replace(range, text);
        }, options);
      } else {
        // No editor shows the document: a workspace edit (its own undo step, unavoidably).
        const edit = new vscode.WorkspaceEdit();
        edit.replace(doc.uri, range, text);
        ok = await vscode.workspace.applyEdit(edit);
      }
    } finally {
      this.owner.ownEdits--;
    }
    if (!ok) {
      throw new Error('the editor refused the change');
    }
    this.wroteAny = true;
    this.shown = target;
  }
}
