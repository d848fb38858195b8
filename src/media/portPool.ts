// RTP ports from a node's configured range (nodes.<n>.rtp): an even port for
// RTP and the odd one above it for RTCP (RFC 3550 §11), one UDP socket each.
// A pair someone else holds part of is skipped. Each search starts at a
// random pair, so a stranger cannot guess the next call's ports.
import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';

export interface BoundPort {
  socket: Socket;
  /** RTCP, on port + 1 */
  rtcp: Socket;
  port: number;
  release(): void;
}

function bindOne(port: number, address: string): Promise<Socket | undefined> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    // Only a bind failure closes the socket here: later errors (ICMP port
    // unreachable on a connected socket) belong to the leg, which ignores them.
    const onBindError = () => {
      socket.close();
      resolve(undefined);
    };
    socket.once('error', onBindError);
    socket.bind(port, address, () => {
      socket.off('error', onBindError);
      resolve(socket);
    });
  });
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
    const first = this.min + (this.min % 2);
    this.next = first + 2 * randomInt(Math.max(1, slots));
    if (this.next + 1 > this.max) this.next = first;
    for (let tries = 0; tries < slots; tries++) {
      const port = this.next;
      this.next += 2;
      if (this.next > this.max) this.next = this.min + (this.min % 2);
      if (this.used.has(port) || port + 1 > this.max) continue;
      const socket = await bindOne(port, this.address);
      if (!socket) continue;
      const rtcp = await bindOne(port + 1, this.address);
      if (!rtcp) {
        socket.close();
        continue;
      }
      this.used.add(port);
      return {
        socket,
        rtcp,
        port,
        release: () => {
          this.used.delete(port);
          socket.close();
          rtcp.close();
        },
      };
    }
    throw new Error(`no free RTP port in ${this.address}:${this.min}-${this.max}`);
  }
}
