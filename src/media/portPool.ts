// RTP ports from a node's configured range (nodes.<n>.rtp): even ports, one
// UDP socket each (RTCP rides on the same port, RFC 5761 style). A port
// someone else holds is skipped.
import { createSocket, type Socket } from 'node:dgram';

export interface BoundPort {
  socket: Socket;
  port: number;
  release(): void;
}

export class PortPool {
  private readonly used = new Set<number>();
  private next: number;

  constructor(
    readonly address: string,
    private readonly min: number,
    private readonly max: number,
  ) {
    this.next = min + (min % 2);
  }

  get inUse(): number {
    return this.used.size;
  }

  async bind(): Promise<BoundPort> {
    const slots = Math.floor((this.max - this.min + 1) / 2);
    for (let tries = 0; tries < slots; tries++) {
      const port = this.next;
      this.next += 2;
      if (this.next > this.max) this.next = this.min + (this.min % 2);
      if (this.used.has(port)) continue;
      const socket = createSocket('udp4');
      const ok = await new Promise<boolean>((resolve) => {
        socket.once('error', () => resolve(false));
        socket.bind(port, this.address, () => resolve(true));
      });
      if (!ok) {
        socket.close();
        continue;
      }
      this.used.add(port);
      return {
        socket,
        port,
        release: () => {
          this.used.delete(port);
          socket.close();
        },
      };
    }
    throw new Error(`no free RTP port in ${this.address}:${this.min}-${this.max}`);
  }
}
