// Asks the user for a rewrite instruction: a quick pick of recent instructions plus free text.
import * as vscode from 'vscode';
import { asRecentList, pushRecent } from './recent';

const RECENT_KEY = 'specedit.recentInstructions';

interface InstructionItem extends vscode.QuickPickItem {
  instruction: string;
}

export function recentInstructions(state: vscode.Memento): string[] {
  return asRecentList(state.get<unknown>(RECENT_KEY));
}

export async function rememberInstruction(state: vscode.Memento, instruction: string): Promise<void> {
  await state.update(RECENT_KEY, pushRecent(recentInstructions(state), instruction));
}

export async function clearRecentInstructions(state: vscode.Memento): Promise<void> {
  await state.update(RECENT_KEY, []);
}

/**
 * Shows the instruction box. Resolves to the trimmed instruction, or `undefined` when the
 * user escapes (or accepts an empty box). The accepted instruction is remembered.
 */
export function askForInstruction(state: vscode.Memento): Promise<string | undefined> {
  const recent = recentInstructions(state);
  const recentItems: InstructionItem[] = recent.map((r) => ({
    label: r,
    description: 'recent',
    instruction: r,
  }));

  const qp = vscode.window.createQuickPick<InstructionItem>();
  qp.title = 'Rewrite Selection with Instruction';
  qp.placeholder =
    recent.length > 0
      ? 'Type an instruction, or pick a recent one (e.g. "convert to async/await")'
      : 'Type an instruction (e.g. "convert to async/await") and press Enter';
  qp.ignoreFocusOut = true;
  qp.matchOnDescription = false;
  qp.items = recentItems;

  const typedItem = (value: string): InstructionItem => ({
    label: value,
    description: 'new instruction',
    alwaysShow: true,
    instruction: value,
  });

  return new Promise<string | undefined>((resolve) => {
    let done = false;
    const finish = (value: string | undefined): void => {
      if (done) {
        return;
      }
      done = true;
      qp.hide();
      resolve(value);
    };
    const subscriptions: vscode.Disposable[] = [
      qp.onDidChangeValue((value) => {
        const v = value.trim();
        if (v === '' || recent.includes(v)) {
          qp.items = recentItems;
          return;
        }
        const typed = typedItem(v);
        qp.items = [typed, ...recentItems];
        qp.activeItems = [typed];
      }),
      qp.onDidAccept(() => {
        const picked = qp.selectedItems[0] ?? qp.activeItems[0];
        const value = (picked?.instruction ?? qp.value).trim();
        if (value === '') {
          return; // keep the box open: an empty instruction means nothing
        }
        void rememberInstruction(state, value);
        finish(value);
      }),
      qp.onDidHide(() => {
        for (const d of subscriptions) {
          d.dispose();
        }
        qp.dispose();
        finish(undefined);
      }),
    ];
    qp.show();
  });
}
