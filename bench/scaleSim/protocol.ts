// What the simulation's orchestrator and its worker processes say to each other (IPC).
export type SimRequest =
  | { op: 'status' }
  | { op: 'allocate'; id: number; node: string; phone: string }
  /** cm1 writes a new conference room entry into the mapping table */
  | { op: 'publish'; name: string }
  /** when each node of the worker saw that entry */
  | { op: 'seen'; name: string }
  | { op: 'stop' };

export interface SimNodeStatus {
  node: string;
  /** nodes it sees up, itself included */
  up: number;
  /** mapping table entries it holds */
  entries: number;
  /** entries it should hold: every phone, and the devices of the nodes it watches (its own, its MRGLs') */
  expects: number;
  /** of the devices and phones it needs (its phone's MRGL, every phone), those it can reach (0 until it holds every entry) */
  registered: number;
  needs: number;
  /** entries it holds whose signature it has not checked yet (never used) */
  unchecked: number;
  /** nodes it declared down */
  downs: number;
}

export type SimReply =
  | { op: 'started'; ms: number }
  | { op: 'status'; rssMb: number; cpuMs: number; nodes: SimNodeStatus[] }
  | { op: 'allocated'; id: number; ms: number; at?: string; error?: string }
  | { op: 'seen'; name: string; at: Record<string, number> }
  | { op: 'error'; message: string };
