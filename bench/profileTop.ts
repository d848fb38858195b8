// Where a V8 CPU profile (node --cpu-prof) spent its time: self time per
// function (name, file and line), the largest first, as a share of the
// samples. Enough to see a hot spot from a bench run without DevTools.
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  samples: number[];
}

export function topFunctions(profile: CpuProfile, most: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of profile.samples) {
    const f = byId.get(id)?.callFrame;
    if (!f) continue;
    const where = f.url
      ? `${f.url.replace(/^file:\/\/.*?\/(src|node_modules|bench)\//, '$1/')}:${f.lineNumber + 1}`
      : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length || 1;
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, most)
    .map(([k, n]) => `${((100 * n) / total).toFixed(1).padStart(5)} %  ${k}`)
    .join('\n');
}
