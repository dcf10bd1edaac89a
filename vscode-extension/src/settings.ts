// The `specedit` settings the language server understands, cleaned up for the wire.
// Pure (no `vscode` import) so it can be unit-tested with node:test.

/** Keys of the `specedit` section that belong to the server (the rest are the client's). */
export const SERVER_SETTING_KEYS = [
  'model',
  'device',
  'dtype',
  'method',
  'maxNewTokens',
  'contextLines',
  'presets',
] as const;

export type ServerSettingKey = (typeof SERVER_SETTING_KEYS)[number];

export interface ServerSettings {
  model?: string;
  device?: string;
  dtype?: string;
  method?: string;
  maxNewTokens?: number;
  contextLines?: number;
  presets?: string[];
}

/**
 * Builds the object sent as `initializationOptions`, in `workspace/didChangeConfiguration`
 * and as the answer to `workspace/configuration` for section `specedit`.
 *
 * Unset values are left out so that the server applies its own defaults: empty strings,
 * `null`, the string "auto" (device/dtype: "let the server pick") and an empty preset list.
 */
export function serverSettings(get: (key: ServerSettingKey) => unknown): ServerSettings {
  const out: ServerSettings = {};
  for (const key of ['model', 'method'] as const) {
    const v = get(key);
    if (typeof v === 'string' && v.trim() !== '') {
      out[key] = v.trim();
    }
  }
  for (const key of ['device', 'dtype'] as const) {
    const v = get(key);
    if (typeof v === 'string' && v.trim() !== '' && v !== 'auto') {
      out[key] = v.trim();
    }
  }
  for (const key of ['maxNewTokens', 'contextLines'] as const) {
    const v = get(key);
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) {
      out[key] = v;
    }
  }
  const presets = get('presets');
  if (Array.isArray(presets)) {
    const clean = presets
      .filter((p): p is string => typeof p === 'string')
      .map((p) => p.trim())
      .filter((p) => p !== '');
    if (clean.length > 0) {
      out.presets = clean;
    }
  }
  return out;
}
