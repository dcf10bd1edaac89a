// Holds back `textDocument/didChange` for a document while its rewrite runs.
//
// The server refuses a rewrite whose document changed while it ran (it could not place the
// edit). A review shows the rewrite inside the document as it decodes, so those changes are
// kept from the server until the answer is in, then sent in order: the server's copy ends up
// exactly as the editor's, and the request saw the document as it was asked about.
// Pure (no `vscode` import) so it can be unit-tested with node:test.

export class SyncHold {
  private readonly queues = new Map<string, (() => Promise<void>)[]>();

  hold(uri: string): void {
    if (!this.queues.has(uri)) {
      this.queues.set(uri, []);
    }
  }

  isHeld(uri: string): boolean {
    return this.queues.has(uri);
  }

  /** Queues `send` if `uri` is held (returns true); else leaves it to the caller. */
  offer(uri: string, send: () => Promise<void>): boolean {
    const queue = this.queues.get(uri);
    if (queue === undefined) {
      return false;
    }
    queue.push(send);
    return true;
  }

  /** Sends what was held, in order (also what arrives meanwhile), then stops holding. */
  async release(uri: string, onError: (error: unknown) => void = () => undefined): Promise<void> {
    const queue = this.queues.get(uri);
    if (queue === undefined) {
      return;
    }
    for (let send = queue.shift(); send !== undefined; send = queue.shift()) {
      try {
        await send();
      } catch (error) {
        onError(error);
      }
    }
    this.queues.delete(uri);
  }
}
