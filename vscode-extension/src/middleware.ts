// vscode-languageclient middleware: what the extension adds to requests on their way to and
// from the server.
//   - `workspace/executeCommand specedit.rewriteSelection` (from the light bulb or from the
//     extension's own command) gets the user's instruction if it has none;
//     With `specedit.review` = `inline` (the default) the rewrite then runs as a review
//     (review.ts) instead of the server's command, which would apply it at once;
//   - `textDocument/didChange` is held back for a document whose rewrite is running
//     (syncHold.ts), so that the review's live edits do not make the server refuse it;
//   - `workspace/configuration` for section `specedit` is answered with the same object that
//     `initializationOptions` and `didChangeConfiguration` carry.
import * as vscode from 'vscode';
import type { LanguageClient, Middleware } from 'vscode-languageclient/node';
import { readServerSettings, reviewMode } from './config';
import { SERVER_REWRITE_COMMAND, SETTINGS_SECTION } from './ids';
import { askForInstruction } from './instruction';
import type { Messages } from './messages';
import { isCancellation, type RewriteArgs, type ReviewController } from './review';
import { firstLine } from './text';

export interface MiddlewareContext {
  /** Where recent instructions are remembered. */
  state: vscode.Memento;
  output: vscode.LogOutputChannel;
  messages: Messages;
  review: ReviewController;
  /** The running client (for the review's own request). */
  client: () => LanguageClient | undefined;
}

export function middleware(ctx: MiddlewareContext): Middleware {
  return {
    executeCommand: async (command, args, next) => {
      if (command !== SERVER_REWRITE_COMMAND) {
        return (await next(command, args)) as unknown;
      }
      const first: unknown = args[0];
      const base =
        typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : {};
      let instruction = typeof base.instruction === 'string' ? base.instruction.trim() : '';
      if (instruction === '') {
        const asked = await askForInstruction(ctx.state);
        if (asked === undefined) {
          return undefined; // escaped: nothing is sent
        }
        instruction = asked;
      }
      const client = ctx.client();
      if (reviewMode() === 'inline' && client !== undefined) {
        try {
          await ctx.review.run(client, { ...base, instruction } as unknown as RewriteArgs);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          ctx.output.error(`Review failed: ${message}`);
          void ctx.messages.showError(`Speculative Edits: the rewrite failed: ${firstLine(message)}`, ['Show Log']);
        }
        return undefined;
      }
      try {
        const rest: unknown[] = args.slice(1);
        return (await next(command, [{ ...base, instruction }, ...rest])) as unknown;
      } catch (error) {
        if (isCancellation(error)) {
          ctx.output.info('Rewrite cancelled.');
          return undefined;
        }
        const message = error instanceof Error ? error.message : String(error);
        ctx.output.error(`Rewrite failed: ${message}`);
        void ctx.messages.showError(`Speculative Edits: the rewrite failed: ${firstLine(message)}`, ['Show Log']);
        return undefined;
      }
    },
    didChange: (event, next) => {
      const uri = event.document.uri.toString();
      return ctx.review.hold.offer(uri, () => next(event)) ? Promise.resolve() : next(event);
    },
    workspace: {
      configuration: async (params, token, next) => {
        const result = await next(params, token);
        if (!Array.isArray(result)) {
          return result;
        }
        return params.items.map((item, i): unknown =>
          item.section === SETTINGS_SECTION ? readServerSettings() : result[i],
        );
      },
    },
  };
}
