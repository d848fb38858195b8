// Bus subject names, all under one prefix per cluster so two clusters can
// share a NATS server.
export class Subjects {
  readonly prefix: string;
  constructor(cluster: string) {
    this.prefix = `tandem.${cluster}`;
  }
  /** requests to the device processes a node hosts */
  inbox(node: string): string {
    return `${this.prefix}.node.${node}.inbox`;
  }
  /** node-level queries (status of all its devices) */
  nodeControl(node: string): string {
    return `${this.prefix}.node.${node}.control`;
  }
  /** liveness probes of a node its peers stopped hearing */
  ping(node: string): string {
    return `${this.prefix}.node.${node}.ping`;
  }
  /** call signalling between the two halves of a call (one per phone's node) */
  calls(node: string): string {
    return `${this.prefix}.node.${node}.calls`;
  }
  /** The node a per-node subject belongs to (tandem.<cluster>.node.<n>.*), if it is one. */
  targetNode(subject: string): string | undefined {
    const head = `${this.prefix}.node.`;
    if (!subject.startsWith(head)) return undefined;
    const end = subject.indexOf('.', head.length);
    return end > head.length ? subject.slice(head.length, end) : undefined;
  }

  /** the cluster's archive of call detail records: `<this>.<node>`, each node's own (a JetStream stream) */
  get cdrs(): string {
    return `${this.prefix}.cdr`;
  }

  get registry(): string {
    return `${this.prefix}.registry`;
  }
  get heartbeat(): string {
    return `${this.prefix}.heartbeat`;
  }
  get load(): string {
    return `${this.prefix}.load`;
  }
}
