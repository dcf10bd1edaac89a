// What the status-bar item shows for a `specedit/status` notification.
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

/** The status-bar item for a server-reported status. */
export function viewForStatus(s: ServerStatus): StatusView {
  const model = s.model ? escapeMarkdown(s.model) : 'the model';
  const footer = '\n\n_Click to show the server log._';
  const message = s.message ? `\n\n${escapeMarkdown(s.message)}` : '';
  switch (s.state) {
    case 'loading':
      return {
        text: `$(loading~spin) ${NAME}: loading`,
        tooltip: `**Speculative Edits**: loading ${model}…${message}${footer}`,
        ariaLabel: 'Speculative Edits: loading the model',
        isError: false,
      };
    case 'busy':
      return {
        text: `$(sync~spin) ${NAME}: rewriting…`,
        tooltip: `**Speculative Edits**: rewriting with ${model}…${message}${footer}`,
        ariaLabel: 'Speculative Edits: rewriting',
        isError: false,
      };
    case 'error':
      return {
        text: `$(error) ${NAME}: error`,
        tooltip: `**Speculative Edits**: error with ${model}${message}${footer}`,
        ariaLabel: `Speculative Edits: error${s.message ? `: ${s.message}` : ''}`,
        isError: true,
      };
    case 'ready': {
      let text = `$(check) ${NAME}`;
      let ariaLabel = 'Speculative Edits: ready';
      let details = '';
      if (s.lastRewrite) {
        const speedup = formatSpeedup(s.lastRewrite.speedup);
        text = `$(zap) ${NAME}: ${formatTokensPerSecond(s.lastRewrite.tokensPerSecond)}`;
        if (speedup !== undefined) {
          text += ` · ${speedup}`;
        }
        details = '\n\n' + lastRewriteLines(s.lastRewrite).join('  \n');
        ariaLabel += `; last rewrite ${formatTokensPerSecond(s.lastRewrite.tokensPerSecond)}`;
        if (speedup !== undefined) {
          ariaLabel += `, ${speedup} speed-up`;
        }
      }
      return {
        text,
        tooltip: `**Speculative Edits**: ${model} is ready${details}${message}${footer}`,
        ariaLabel,
        isError: false,
      };
    }
    default: {
      // A state this client does not know yet: show it rather than hide it.
      const state = String((s as { state: unknown }).state);
      return {
        text: `$(info) ${NAME}: ${state}`,
        tooltip: `**Speculative Edits**: ${escapeMarkdown(state)}${message}${footer}`,
        ariaLabel: `Speculative Edits: ${state}`,
        isError: false,
      };
    }
  }
}

/** The status-bar item while the client has no status from the server. */
export function viewForClientState(state: ClientState, detail?: string): StatusView {
  const footer = '\n\n_Click to show the server log._';
  const more = detail ? `\n\n${escapeMarkdown(detail)}` : '';
  if (state === 'starting') {
    return {
      text: `$(loading~spin) ${NAME}`,
      tooltip: `**Speculative Edits**: starting the language server…${more}${footer}`,
      ariaLabel: 'Speculative Edits: starting the language server',
      isError: false,
    };
  }
  return {
    text: `$(error) ${NAME}: not running`,
    tooltip: `**Speculative Edits**: the language server is not running.${more}${footer}`,
    ariaLabel: 'Speculative Edits: not running',
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
