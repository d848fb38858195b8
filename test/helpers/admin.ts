// Admin API credentials of the test configs: one operator and one viewer
// token, configured by their hashes as an operator would.
import { hashToken } from '../../src/admin/tokens.ts';

export const OPERATOR_TOKEN = 'test-operator-token-0123456789abcdef';
export const VIEWER_TOKEN = 'test-viewer-token-0123456789abcdef';

export const ADMIN_YAML = `
admin:
  tokens:
    - { name: test-operator, role: operator, sha256: ${hashToken(OPERATOR_TOKEN)} }
    - { name: test-viewer, role: viewer, sha256: ${hashToken(VIEWER_TOKEN)} }
`;

/** The config with the test tokens (unless it has an admin section of its own), and its CDRs in memory (unless it says where). */
export function withTestAdmin(yaml: string): string {
  const admin = /^admin:/m.test(yaml) ? yaml : yaml + ADMIN_YAML;
  // Call detail records in memory unless a test says where (the default, .tandem/cdr beside the config, is the repository here).
  // (first, so a section a caller extends at the end stays the last: natsNodes adds the admin TLS lines)
  return /^cdr:/m.test(admin) ? admin : `cdr: { dir: null }\n${admin}`;
}

/** fetch with the operator's bearer token (or the given one). */
export function adminFetch(url: string, init: RequestInit = {}, token = OPERATOR_TOKEN): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
  return fetch(url, { ...init, headers });
}
