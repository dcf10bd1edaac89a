// The status-bar item: the model's state, the review's (changes waiting, or a rewrite
// streaming in) and the last rewrite's speed, in one item. What it says comes from the pure
// `status.ts`; this file only owns the VS Code item.
import * as vscode from 'vscode';
import { SHOW_LOG_COMMAND } from './ids';
import {
  type ClientState,
  type ReviewState,
  type ServerStatus,
  type StatusView,
  viewForClientState,
  viewForStatus,
} from './status';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private lastStatus: ServerStatus | undefined;
  private clientState: { state: ClientState; detail?: string } = { state: 'starting' };
  private review: ReviewState | undefined;

  constructor() {
    this.item = vscode.window.createStatusBarItem('specedit.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Speculative Edits';
    this.item.command = SHOW_LOG_COMMAND;
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
    this.lastStatus = keepStats ? { ...status, lastRewrite: previous.lastRewrite } : status;
    this.render();
  }

  setClientState(state: ClientState, detail?: string): void {
    this.lastStatus = undefined;
    this.clientState = { state, detail };
    this.render();
  }

  /** The review's state (review.ts); undefined when no review is on. */
  setReview(review: ReviewState | undefined): void {
    this.review = review;
    this.render();
  }

  private render(): void {
    const view: StatusView = this.lastStatus
      ? viewForStatus(this.lastStatus, this.review)
      : viewForClientState(this.clientState.state, this.clientState.detail, this.review);
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
