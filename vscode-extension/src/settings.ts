// The `specedit` settings the language server understands, checked for the wire.
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
  'endpoint',
  'endpointModel',
  'endpointKeyEnv',
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
  endpoint?: string;
  endpointModel?: string;
  endpointKeyEnv?: string;
}

/**
 * Builds the object sent as `initializationOptions`, in `workspace/didChangeConfiguration`
 * and as the answer to `workspace/configuration` for section `specedit`.
 *
 * Every server key is sent with its value (package.json gives each one the server's default),
 * so what the user sees in VS Code's settings is what the server uses. The server takes the
 * section as the whole truth: a key that is absent or null takes the server's default (for
 * `model`, SPECEDIT_MODEL in the server's environment, else the built-in default). Values of
 * the wrong type, and an empty model, are left out, so the server uses its default for them;
 * the client-only keys (`pythonPath`, `trace`) are never sent.
 */
export function serverSettings(get: (key: ServerSettingKey) => unknown): ServerSettings {
  const out: ServerSettings = {};
  for (const key of ['model', 'device', 'dtype', 'method', 'endpoint', 'endpointModel',
    'endpointKeyEnv'] as const) {
    const v = get(key);
    if (typeof v === 'string' && v.trim() !== '') {
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
    out.presets = presets
      .filter((p): p is string => typeof p === 'string')
      .map((p) => p.trim())
      .filter((p) => p !== '');
  }
  return out;
}
