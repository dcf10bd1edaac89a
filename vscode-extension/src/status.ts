// What the status-bar item shows: the server's `specedit/status` and the review's state.
// Pure (no `vscode` import) so it can be unit-tested with node:test.

export type ServerState = 'loading' | 'ready' | 'error' | 'busy';

export interface RewriteStats {
  tokensPerSecond: number;
  speedup: number | null;
  outputTokens: number;
  forwardPasses: number;
}

/** Params of the server→client notification `specedit/status`. */
export interface ServerStatus {
  state: ServerState;
  model: string;
  message?: string;
  lastRewrite?: RewriteStats;
}

/** Client-side states the server cannot report itself. */
export type ClientState = 'starting' | 'stopped';

export interface StatusView {
  text: string;
  /** Markdown. */
  tooltip: string;
  /** For screen readers (and the end-to-end test): "Speculative Edits: <state>…". */
  ariaLabel: string;
  isError: boolean;
}

const NAME = 'SpecEdit';

export function formatTokensPerSecond(tps: number): string {
  if (!Number.isFinite(tps)) {
    return '? tok/s';
  }
  return `${tps >= 100 ? tps.toFixed(0) : tps.toFixed(1)} tok/s`;
}

export function formatSpeedup(speedup: number | null): string | undefined {
  if (speedup === null || !Number.isFinite(speedup)) {
    return undefined;
  }
  return `${speedup.toFixed(1)}×`;
}

function escapeMarkdown(s: string): string {
  return s.replace(/([\\`*_{}[\]()#+\-.!|<>])/g, '\\$1');
}

function lastRewriteLines(r: RewriteStats): string[] {
  const lines = [
    `Last rewrite: ${formatTokensPerSecond(r.tokensPerSecond)}`,
    `${r.outputTokens} tokens in ${r.forwardPasses} forward passes`,
  ];
  const speedup = formatSpeedup(r.speedup);
  if (speedup !== undefined) {
    lines.splice(1, 0, `Speed-up over plain decoding: ${speedup}`);
  }
  return lines;
}

/**
 * The review's part of the item (review.ts): a rewrite streaming into the editor, or changes
 * that wait for Accept or Reject. One item says both, so that the last rewrite's speed is not
 * shown twice, once for the server and once for the review.
 */
export type ReviewState = { kind: 'streaming' } | { kind: 'pending'; changes: number };

function changesText(n: number): string {
  return `${n} change${n === 1 ? '' : 's'} to review`;
}

/** The tooltip's paragraph about the review, if one is on. */
function reviewParagraph(review: ReviewState | undefined): string {
  if (review?.kind === 'pending') {
    return `\n\n${changesText(review.changes)}: Accept All (Ctrl+Alt+Y), Reject All (Ctrl+Alt+N), ` +
      'or Accept / Reject above each change.';
  }
  if (review?.kind === 'streaming') {
    return '\n\nThe rewrite shows in the editor as it decodes; Cancel it from the status bar, ' +
      'the editor\'s title bar or with Ctrl+Alt+N.';
  }
  return '';
}

/** The status-bar item for a server-reported status, and the review's state if one is on. */
export function viewForStatus(s: ServerStatus, review?: ReviewState): StatusView {
  const model = s.model ? escapeMarkdown(s.model) : 'the model';
  const footer = '\n\n_Click to show the server log._';
  const message = s.message ? `\n\n${escapeMarkdown(s.message)}` : '';
  const pending = review?.kind === 'pending' ? `; ${changesText(review.changes)}` : '';
  const aboutReview = reviewParagraph(review);
  switch (s.state) {
    case 'loading':
      return {
        text: `$(loading~spin) ${NAME}: loading`,
        tooltip: `**Speculative Edits**: loading ${model}…${message}${aboutReview}${footer}`,
        ariaLabel: `Speculative Edits: loading the model${pending}`,
        isError: false,
      };
    case 'busy':
      return {
        text: `$(sync~spin) ${NAME}: rewriting…`,
        tooltip: `**Speculative Edits**: rewriting with ${model}…${message}${aboutReview}${footer}`,
        ariaLabel: `Speculative Edits: rewriting${pending}`,
        isError: false,
      };
    case 'error':
      return {
        text: `$(error) ${NAME}: error`,
        tooltip: `**Speculative Edits**: error with ${model}${message}${aboutReview}${footer}`,
        ariaLabel: `Speculative Edits: error${s.message ? `: ${s.message}` : ''}${pending}`,
        isError: true,
      };
    case 'ready': {
      if (review?.kind === 'streaming') {
        // The review has asked; the server has not said "busy" yet (or the answer is on its way).
        return {
          text: `$(sync~spin) ${NAME}: rewriting…`,
          tooltip: `**Speculative Edits**: rewriting with ${model}…${aboutReview}${footer}`,
          ariaLabel: 'Speculative Edits: rewriting',
          isError: false,
        };
      }
      let speed: string | undefined; // "296 tok/s · 0.8×"
      let ariaLabel = `Speculative Edits: ready${pending}`;
      let details = '';
      if (s.lastRewrite) {
        const speedup = formatSpeedup(s.lastRewrite.speedup);
        speed = formatTokensPerSecond(s.lastRewrite.tokensPerSecond) + (speedup !== undefined ? ` · ${speedup}` : '');
        details = '\n\n' + lastRewriteLines(s.lastRewrite).join('  \n');
        ariaLabel += `; last rewrite ${formatTokensPerSecond(s.lastRewrite.tokensPerSecond)}`;
        if (speedup !== undefined) {
          ariaLabel += `, ${speedup} speed-up`;
        }
      }
      let text = speed !== undefined ? `$(zap) ${NAME}: ${speed}` : `$(check) ${NAME}`;
      if (review?.kind === 'pending') {
        text = `$(diff) ${NAME}: ${changesText(review.changes)}${speed !== undefined ? ` · ${speed}` : ''}`;
      }
      return {
        text,
        tooltip: `**Speculative Edits**: ${model} is ready${aboutReview}${details}${message}${footer}`,
        ariaLabel,
        isError: false,
      };
    }
    default: {
      // A state this client does not know yet: show it rather than hide it.
      const state = String((s as { state: unknown }).state);
      return {
        text: `$(info) ${NAME}: ${state}`,
        tooltip: `**Speculative Edits**: ${escapeMarkdown(state)}${message}${aboutReview}${footer}`,
        ariaLabel: `Speculative Edits: ${state}${pending}`,
        isError: false,
      };
    }
  }
}

/** The status-bar item while the client has no status from the server. */
export function viewForClientState(state: ClientState, detail?: string, review?: ReviewState): StatusView {
  const footer = '\n\n_Click to show the server log._';
  // A review does not need the server to be decided: it stays on while the server restarts.
  const more = (detail ? `\n\n${escapeMarkdown(detail)}` : '') + reviewParagraph(review);
  const pending = review?.kind === 'pending' ? `; ${changesText(review.changes)}` : '';
  if (state === 'starting') {
    return {
      text: `$(loading~spin) ${NAME}`,
      tooltip: `**Speculative Edits**: starting the language server…${more}${footer}`,
      ariaLabel: `Speculative Edits: starting the language server${pending}`,
      isError: false,
    };
  }
  return {
    text: `$(error) ${NAME}: not running`,
    tooltip: `**Speculative Edits**: the language server is not running.${more}${footer}`,
    ariaLabel: `Speculative Edits: not running${pending}`,
    isError: true,
  };
}

/** Checks the shape of a `specedit/status` payload coming off the wire. */
export function isServerStatus(x: unknown): x is ServerStatus {
  if (typeof x !== 'object' || x === null) {
    return false;
  }
  const o = x as Record<string, unknown>;
  return typeof o.state === 'string' && (o.model === undefined || typeof o.model === 'string');
}
