// vscode-languageclient middleware: what the extension adds to requests on their way to and
// from the server.
//   - `workspace/executeCommand specedit.rewriteSelection` (from the light bulb, its presets
//     included, or from the extension's own command) gets the user's instruction if it has
//     none, and closes the notices about earlier rewrites. With `specedit.review` = `inline`
//     (the default) the rewrite then runs as a review (review.ts) instead of the server's
//     command, which would apply it at once; with `off` the command goes to the server with
//     a progress token of the extension's own, so that its Cancel can stop it;
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
import type { Notices } from './notices';
import type { NotificationProgress } from './progress';
import { isCancellation, type RewriteArgs, type ReviewController } from './review';
import type { RunningRewrites } from './runningRewrites';
import { firstLine } from './text';

let nextToken = 1;

export interface MiddlewareContext {
  /** Where recent instructions are remembered. */
  state: vscode.Memento;
  output: vscode.LogOutputChannel;
  messages: Messages;
  notices: Notices;
  review: ReviewController;
  running: RunningRewrites;
  /** The running client (for the review's own request). */
  client: () => LanguageClient | undefined;
  /** The running client's progress notifications (for a direct rewrite's own token). */
  progress: () => NotificationProgress | undefined;
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
      ctx.notices.dismiss(); // they were about earlier rewrites
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
      const progress = ctx.progress();
      const workDoneToken = `specedit-command-${nextToken++}`;
      progress?.track(workDoneToken);
      const uri = typeof base.uri === 'string' && client ? client.protocol2CodeConverter.asUri(base.uri) : undefined;
      const running = uri && progress ? ctx.running.start(uri, () => {
        progress.cancel(workDoneToken);
      }) : undefined;
      try {
        const rest: unknown[] = args.slice(1);
        const argument = progress ? { ...base, instruction, workDoneToken } : { ...base, instruction };
        return (await next(command, [argument, ...rest])) as unknown;
      } catch (error) {
        if (isCancellation(error)) {
          ctx.output.info('Rewrite cancelled.');
          return undefined;
        }
        const message = error instanceof Error ? error.message : String(error);
        ctx.output.error(`Rewrite failed: ${message}`);
        void ctx.messages.showError(`Speculative Edits: the rewrite failed: ${firstLine(message)}`, ['Show Log']);
        return undefined;
      } finally {
        running?.dispose();
        progress?.release(workDoneToken); // refused before it began: nothing was shown
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
