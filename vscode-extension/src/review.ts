// Review before it lands (`specedit.review` = `inline`): the rewrite takes shape in the
// document as it decodes (removed lines red, added lines green), then each hunk is accepted
// or rejected. The logic (diff, decisions, resulting text) lives in the pure reviewModel.ts;
// this file asks the server (`specedit/rewrite` with a partialResultToken), writes the region,
// decorates it, offers the CodeLenses and commands, and tells the status-bar item
// (statusBar.ts) and the running rewrites (runningRewrites.ts: Cancel) what it is doing.
//
// Every change the review makes to the document goes into one undo group, so after Accept
// All a single undo restores the original. Text outside the rewritten lines is never written.
// If the user edits the document during the review: an edit above or below the region moves
// it along; an edit inside it ends the review, leaving the lines as they are (see README).
import * as vscode from 'vscode';
import { type LanguageClient, ProgressType } from 'vscode-languageclient/node';
import {
  ACCEPT_ALL_COMMAND,
  ACCEPT_HUNK_COMMAND,
  CANCEL_REWRITE_COMMAND,
  REJECT_ALL_COMMAND,
  REJECT_HUNK_COMMAND,
  REVIEWING_CONTEXT,
  REWRITE_REQUEST,
} from './ids';
import { splitLines } from './lineDiff';
import type { Messages } from './messages';
import type { Notices } from './notices';
import { applyToRegion, type PlainTextEdit, regionAfterChanges } from './reviewModel';
import { Session, type SessionOwner } from './reviewSession';
import type { RunningRewrites } from './runningRewrites';
import { formatSpeedup, formatTokensPerSecond, type ReviewState } from './status';
import { SyncHold } from './syncHold';
import { firstLine } from './text';

/** A `$/progress` value of a rewrite's partial result (the agreed wire format). */
interface PartialRewrite {
  uri: string;
  text: string;
  covered: number | null;
  outputTokens: number;
  forwardPasses: number;
}

interface RewriteAnswer {
  edit?: {
    changes?: Record<string, PlainTextEdit[]>;
    documentChanges?: { textDocument?: { uri?: string }; edits?: PlainTextEdit[] }[];
  };
  stats?: { tokensPerSecond?: number; speedup?: number | null; outputTokens?: number; forwardPasses?: number };
}

/** What the rewrite is about: the server command's argument. */
export interface RewriteArgs {
  uri: string;
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
  instruction: string;
  /** The document's version `range` refers to (a preset action's, from when it was offered). */
  version?: number;
}

/** What the review needs besides the client. */
export interface ReviewHooks {
  output: vscode.LogOutputChannel;
  messages: Messages;
  /** Where notes about a rewrite go (cut short, unchanged, ended early). */
  notices: Notices;
  /** Registers each rewrite while it runs, with its Cancel. */
  running: RunningRewrites;
  /** The status-bar item's share of the review; undefined when none is on. */
  showState: (state: ReviewState | undefined) => void;
}

/** How long a stream's first write waits at most for VS Code to draw the Cancel lens. */
const LENS_WAIT_MS = 1_000;

// Off the wire: checked before use.
const partialType = new ProgressType<Partial<PartialRewrite> | null>();
let nextToken = 1;

/** The whole lines a selection covers, as the server widens it: [first, end). */
export function selectedLines(range: RewriteArgs['range']): [number, number] | undefined {
  const { start, end } = range;
  if (end.line < start.line || (end.line === start.line && end.character <= start.character)) {
    return undefined;
  }
  const last = end.character === 0 && end.line > start.line ? end.line - 1 : end.line;
  return [start.line, last + 1];
}

export class ReviewController implements vscode.Disposable, SessionOwner {
  readonly hold = new SyncHold();
  /** > 0 while the review's own edit is being applied (its change events are not the user's). */
  ownEdits = 0;
  private session: Session | undefined;
  private readonly removed = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('diffEditor.removedLineBackground'),
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.deletedForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
    textDecoration: 'line-through',
    opacity: '0.75',
  });
  private readonly added = vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('diffEditor.insertedLineBackground'),
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.addedForeground'),
    overviewRulerLane: vscode.OverviewRulerLane.Left,
  });
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly output: vscode.LogOutputChannel;
  /** Lets the running session's stream write, once VS Code has its Cancel lens. */
  private lensServed: (() => void) | undefined;

  constructor(private readonly hooks: ReviewHooks) {
    this.output = hooks.output;
    this.disposables.push(
      vscode.languages.registerCodeLensProvider({ scheme: '*' }, {
        onDidChangeCodeLenses: this.lensesChanged.event,
        provideCodeLenses: (doc) => this.lenses(doc),
      }),
      vscode.commands.registerCommand(ACCEPT_ALL_COMMAND, async () => {
        await this.decideAll('accepted');
      }),
      vscode.commands.registerCommand(REJECT_ALL_COMMAND, async () => {
        await this.decideAll('rejected');
      }),
      vscode.commands.registerCommand(ACCEPT_HUNK_COMMAND, async (hunk: unknown) => {
        await this.decideOne(hunk, 'accepted');
      }),
      vscode.commands.registerCommand(REJECT_HUNK_COMMAND, async (hunk: unknown) => {
        await this.decideOne(hunk, 'rejected');
      }),
      vscode.workspace.onDidChangeTextDocument((e) => {
        this.onDocumentChanged(e);
      }),
      vscode.workspace.onDidCloseTextDocument((doc) => {
        if (doc === this.session?.document) {
          void this.drop('the document was closed');
        }
      }),
      vscode.window.onDidChangeVisibleTextEditors(() => {
        if (this.session) {
          this.decorate(this.session);
        }
      }),
    );
  }

  /** Runs a rewrite under review. Resolves when the review has ended (or could not start). */
  async run(client: LanguageClient, args: RewriteArgs): Promise<void> {
    if (this.session) {
      this.hooks.notices.show('info', 'Speculative Edits: finish the rewrite under review first (Accept All or Reject All).');
      return;
    }
    const document = await vscode.workspace.openTextDocument(client.protocol2CodeConverter.asUri(args.uri));
    const span = selectedLines(args.range);
    if (span === undefined || span[0] >= document.lineCount) {
      this.hooks.notices.show('info', 'Speculative Edits: select the code to rewrite first.');
      return;
    }
    const [first, end] = [span[0], Math.min(span[1], document.lineCount)];
    const endPos = end < document.lineCount ? new vscode.Position(end, 0) : document.lineAt(document.lineCount - 1).range.end;
    const original = splitLines(document.getText(new vscode.Range(first, 0, endPos.line, endPos.character)));
    const session = new Session(document, first, original, this);
    this.session = session;
    // VS Code asks for lenses again only once the document has not changed for a while (at
    // least 250 ms), so a stream that starts writing before it has asked keeps the
    // "Rewriting… Cancel" lens from being drawn until it ends; once drawn, the lens stays
    // through the stream's edits. So the stream's first write waits until the lens is out, or
    // LENS_WAIT_MS at most (VS Code asks only while the editor has the focus).
    session.holdWritesUntil(new Promise<void>((resolve) => {
      this.lensServed = resolve;
      setTimeout(resolve, LENS_WAIT_MS);
    }));
    // The selection would hide the red and green lines under its own highlight.
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document === document && !editor.selection.isEmpty) {
        const at = new vscode.Position(first, 0);
        editor.selection = new vscode.Selection(at, at);
      }
    }
    this.hold.hold(session.uri);
    const running = this.hooks.running.start(document.uri, () => {
      session.cancel.cancel();
    });
    this.showState(session);
    this.lensesChanged.fire();

    const token = `specedit-review-${nextToken++}`;
    const partials = client.onProgress(partialType, token, (value) => {
      if (session.ended || typeof value?.text !== 'string') {
        return;
      }
      session.model.stream(value.text, typeof value.covered === 'number' ? value.covered : null);
      this.output.trace(`Partial rewrite: ${value.outputTokens ?? '?'} tokens, ${value.forwardPasses ?? '?'} forward passes.`);
      session.show().catch((e: unknown) => {
        this.output.warn(`Showing the rewrite: ${String(e)}`);
      });
    });
    let answer: RewriteAnswer | undefined;
    let failure: unknown;
    try {
      answer = await client.sendRequest<RewriteAnswer>(
        REWRITE_REQUEST,
        // A preset's version is the one its range was offered for: the server refuses the
        // rewrite if the document moved on since (else the version the region was read at).
        { ...args, version: args.version ?? document.version, partialResultToken: token },
        session.cancel.token,
      );
    } catch (error) {
      failure = error;
    } finally {
      partials.dispose();
      running.dispose();
    }
    // Held changes go to the server whatever happened (the review's own edits included).
    await this.hold.release(session.uri, (e) => {
      this.output.warn(`Sending a held change: ${String(e)}`);
    });
    if (session.ended) {
      return; // dropped meanwhile (closed, edited inside the region)
    }
    if (failure !== undefined || answer === undefined) {
      await this.endRestoring(session, failure);
      return;
    }
    try {
      const edits = editsFor(answer, args.uri);
      session.model.finish(applyToRegion(original, first, edits));
    } catch (error) {
      await this.endRestoring(session, error);
      return;
    }
    session.stats = statsText(answer.stats);
    this.output.info(
      `Rewrite ready for review: ${session.model.hunkCount} change(s)${session.stats ? `; ${session.stats}` : ''}.`,
    );
    if (session.model.hunkCount === 0) {
      await this.end(session);
      this.hooks.notices.show('info', 'Speculative Edits: the rewrite left the selected code unchanged.');
      return;
    }
    await session.show();
    void vscode.commands.executeCommand('setContext', REVIEWING_CONTEXT, true);
    this.showState(session);
    this.lensesChanged.fire();
  }

  /** The stream stops: cancels the request (the server stops before its next forward pass). */
  cancel(): void {
    this.session?.cancel.cancel();
  }

  private async decideAll(decision: 'accepted' | 'rejected'): Promise<void> {
    const session = this.session;
    if (!session?.model.isFinished) {
      if (session && decision === 'rejected') {
        this.cancel(); // Reject All while it still runs: stop it; the original stays
      }
      return;
    }
    session.model.decideAll(decision);
    await this.end(session);
  }

  private async decideOne(hunk: unknown, decision: 'accepted' | 'rejected'): Promise<void> {
    const session = this.session;
    if (!session?.model.isFinished || typeof hunk !== 'number' || !session.model.pendingHunks().includes(hunk)) {
      return;
    }
    session.model.decide(hunk, decision);
    if (session.model.pendingHunks().length === 0) {
      await this.end(session);
      return;
    }
    await session.show();
    this.showState(session);
    this.lensesChanged.fire();
  }

  /** Ends the review with the model's result (pending hunks rejected), closing the undo group. */
  private async end(session: Session): Promise<void> {
    session.ended = true;
    try {
      await session.show(true);
    } catch (error) {
      this.output.error(`Ending the review: ${String(error)}`);
    }
    this.clear(session);
  }

  /** The rewrite failed or was cancelled: the original lines come back. */
  private async endRestoring(session: Session, failure: unknown): Promise<void> {
    session.model.decideAll('rejected');
    await this.end(session);
    if (isCancellation(failure)) {
      this.output.info('Rewrite cancelled; the original code is back.');
      return;
    }
    const message = failure instanceof Error ? failure.message : String(failure);
    this.output.error(`Rewrite failed: ${message}`);
    void this.hooks.messages.showError(`Speculative Edits: the rewrite failed: ${firstLine(message)}`, ['Show Log']);
  }

  /** Ends the review without touching the document. */
  private async drop(why: string): Promise<void> {
    const session = this.session;
    if (!session || session.ended) {
      return;
    }
    session.ended = true;
    session.cancel.cancel();
    this.clear(session);
    await this.hold.release(session.uri);
    this.hooks.notices.show(
      'warning',
      `Speculative Edits: the review ended because ${why}; the lines stay as they are now ` +
        '(Undo takes back the rewrite\'s lines).',
    );
  }

  private clear(session: Session): void {
    if (this.session !== session) {
      return;
    }
    this.session = undefined;
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document === session.document) {
        editor.setDecorations(this.removed, []);
        editor.setDecorations(this.added, []);
      }
    }
    void vscode.commands.executeCommand('setContext', REVIEWING_CONTEXT, false);
    this.hooks.showState(undefined);
    this.lensesChanged.fire();
  }

  decorate(session: Session): void {
    if (this.session !== session) {
      return;
    }
    const { marks } = session.model.render();
    const removed: vscode.Range[] = [];
    const added: vscode.Range[] = [];
    marks.forEach((m, i) => {
      const line = session.startLine + i;
      if (m !== 'same' && line < session.document.lineCount) {
        (m === 'removed' ? removed : added).push(new vscode.Range(line, 0, line, 0));
      }
    });
    for (const editor of vscode.window.visibleTextEditors) {
      if (editor.document === session.document) {
        editor.setDecorations(this.removed, removed);
        editor.setDecorations(this.added, added);
      }
    }
  }

  private lenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const session = this.session;
    if (!session || doc !== session.document) {
      return [];
    }
    const top = new vscode.Range(session.startLine, 0, session.startLine, 0);
    if (!session.model.isFinished) {
      // After this answer has gone back to VS Code: the stream may write from then on.
      const served = this.lensServed;
      this.lensServed = undefined;
      if (served) {
        setTimeout(served, 0);
      }
      return [new vscode.CodeLens(top, {
        title: '$(sync~spin) Rewriting… Cancel',
        command: CANCEL_REWRITE_COMMAND,
        arguments: [doc.uri],
      })];
    }
    const lenses = [
      new vscode.CodeLens(top, { title: 'Accept All (Ctrl+Alt+Y)', command: ACCEPT_ALL_COMMAND }),
      new vscode.CodeLens(top, { title: 'Reject All (Ctrl+Alt+N)', command: REJECT_ALL_COMMAND }),
    ];
    for (const [hunk, line] of session.model.render().hunkStarts) {
      const at = new vscode.Range(session.startLine + line, 0, session.startLine + line, 0);
      lenses.push(
        new vscode.CodeLens(at, { title: 'Accept', command: ACCEPT_HUNK_COMMAND, arguments: [hunk] }),
        new vscode.CodeLens(at, { title: 'Reject', command: REJECT_HUNK_COMMAND, arguments: [hunk] }),
      );
    }
    return lenses;
  }

  private showState(session: Session): void {
    this.hooks.showState(
      session.model.isFinished
        ? { kind: 'pending', changes: session.model.pendingHunks().length }
        : { kind: 'streaming' },
    );
  }

  private onDocumentChanged(e: vscode.TextDocumentChangeEvent): void {
    const session = this.session;
    if (!session || e.document !== session.document || this.ownEdits > 0 || e.contentChanges.length === 0) {
      return;
    }
    const moved = regionAfterChanges(
      session.startLine,
      session.shown.length,
      e.contentChanges.map((c) => ({ startLine: c.range.start.line, endLine: c.range.end.line, text: c.text })),
    );
    if (moved === 'inside') {
      void this.drop('the document was edited inside the rewritten lines');
      return;
    }
    session.startLine = moved;
    this.decorate(session);
    this.lensesChanged.fire();
  }

  dispose(): void {
    this.session?.cancel.cancel();
    for (const d of this.disposables) {
      d.dispose();
    }
    this.removed.dispose();
    this.added.dispose();
    this.lensesChanged.dispose();
  }
}

function editsFor(answer: RewriteAnswer, uri: string): PlainTextEdit[] {
  const edits: PlainTextEdit[] = [];
  for (const [key, list] of Object.entries(answer.edit?.changes ?? {})) {
    if (key !== uri) {
      throw new Error(`the server's edit changes another document (${key})`);
    }
    edits.push(...list);
  }
  for (const change of answer.edit?.documentChanges ?? []) {
    if (change.textDocument?.uri !== uri) {
      throw new Error("the server's edit changes another document");
    }
    edits.push(...(change.edits ?? []));
  }
  return edits;
}

function statsText(stats: RewriteAnswer['stats']): string {
  if (!stats || typeof stats.tokensPerSecond !== 'number') {
    return '';
  }
  const speedup = formatSpeedup(stats.speedup ?? null);
  return `${formatTokensPerSecond(stats.tokensPerSecond)}${speedup ? ` · ${speedup} speed-up` : ''}`;
}

/** A request the user cancelled: vscode-languageclient rejects with a cancellation error. */
export function isCancellation(error: unknown): boolean {
  return (
    error instanceof vscode.CancellationError ||
    (error instanceof Error && (error.name === 'Canceled' || error.name === 'LSPCancellationError')) ||
    (typeof error === 'object' && error !== null && (error as { code?: unknown }).code === -32800)
  );
}
