// The light bulb's preset actions ("Add docstrings", …) go through the review like any rewrite.
//
// The server computes a preset's edit in `codeAction/resolve` for clients that say they can
// resolve an action's `edit`, and VS Code applies a resolved edit at once: no review. Clients
// that cannot resolve edits get each preset as the command `specedit.rewriteSelection` with
// its instruction (lsp_server/actions.py), which this extension's middleware runs as a review
// (or, with `specedit.review` = `off`, lets the server apply). So the client says it cannot.
// Pure (no `vscode` import at run time) so it can be unit-tested with node:test.
import type { ClientCapabilities, FeatureState, StaticFeature } from 'vscode-languageclient/node';

/** Removes `edit` from the code actions' resolvable properties (the rest stays resolvable). */
export function declineEditResolution(capabilities: ClientCapabilities): void {
  const support = capabilities.textDocument?.codeAction?.resolveSupport;
  if (support === undefined) {
    return;
  }
  support.properties = support.properties.filter((p) => p !== 'edit');
}

/**
 * Registered after vscode-languageclient's own features, so it edits the capabilities they
 * filled in.
 */
export class PresetsAsCommands implements StaticFeature {
  fillClientCapabilities(capabilities: ClientCapabilities): void {
    declineEditResolution(capabilities);
  }

  initialize(): void {
    // nothing to set up: the capability is all there is to it
  }

  getState(): FeatureState {
    return { kind: 'static' };
  }

  clear(): void {
    // nothing to clear
  }
}
