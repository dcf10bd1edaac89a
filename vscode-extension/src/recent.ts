// The list of recent instructions. Pure so it can be unit-tested with node:test.

export const MAX_RECENT_INSTRUCTIONS = 20;

/** `instruction` first, without duplicates (ignoring surrounding spaces), at most `max` long. */
export function pushRecent(
  recent: readonly string[],
  instruction: string,
  max: number = MAX_RECENT_INSTRUCTIONS,
): string[] {
  const item = instruction.trim();
  if (item === '') {
    return recent.slice(0, max);
  }
  return [item, ...recent.filter((r) => r.trim() !== item)].slice(0, max);
}

/** Reads a stored value defensively: anything that is not a list of strings counts as empty. */
export function asRecentList(stored: unknown): string[] {
  if (!Array.isArray(stored)) {
    return [];
  }
  return stored.filter((s): s is string => typeof s === 'string' && s.trim() !== '');
}
