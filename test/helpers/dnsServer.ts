// A DNS server on loopback for tests (UDP, one zone held in memory): answers
// A, AAAA and SRV questions from its records, NXDOMAIN for names it has no
// record of at all, and counts the questions it was asked.
import { createSocket, type Socket } from 'node:dgram';
import * as packet from 'dns-packet';

export interface ZoneRecords {
  a?: Record<string, string[]>;
  srv?: Record<string, Array<{ target: string; port: number; priority: number; weight: number }>>;
}

export class DnsServer {
  readonly asked: string[] = [];
  private constructor(
    private readonly sock: Socket,
    public zone: ZoneRecords,
  ) {}

  static async open(zone: ZoneRecords): Promise<DnsServer> {
    const sock = createSocket('udp4');
    const s = new DnsServer(sock, zone);
    sock.on('message', (msg, rinfo) => {
      let q: packet.Packet;
      try {
        q = packet.decode(msg);
      } catch {
        return;
      }
      const question = q.questions?.[0];
      if (!question) return;
      s.asked.push(`${question.type} ${question.name}`);
      const answers: packet.Answer[] = [];
      const name = question.name.toLowerCase();
      if (question.type === 'A')
        for (const ip of s.zone.a?.[name] ?? []) answers.push({ type: 'A', name, ttl: 5, data: ip });
      if (question.type === 'SRV')
        for (const r of s.zone.srv?.[name] ?? [])
          answers.push({
            type: 'SRV',
            name,
            ttl: 5,
            data: { target: r.target, port: r.port, priority: r.priority, weight: r.weight },
          });
      const known = name in (s.zone.a ?? {}) || name in (s.zone.srv ?? {});
      const reply = packet.encode({
        type: 'response',
        id: q.id ?? 0,
        flags: packet.AUTHORITATIVE_ANSWER | (known ? 0 : 3),
        questions: [question],
        answers,
      });
      sock.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    return s;
  }

  get address(): string {
    return `127.0.0.1:${this.sock.address().port}`;
  }

  private closed = false;

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }
}
