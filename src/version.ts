// The package's version (package.json), for --version and tandem_build_info.
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached) return cached;
  // (the package file is one level above both src/ and the compiled dist/)
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'tandem' && pkg.version) return (cached = pkg.version);
    } catch {
      // not there: the other layout
    }
  }
  return (cached = 'unknown');
}
