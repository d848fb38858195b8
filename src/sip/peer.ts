// Where a SIP message goes or came from: a transport address, and for TLS we
// open, the identity the far end must prove. Its own module: the transport
// and the ladder both name it.

/** A SIP peer: transport, address and port. */
export interface SipPeer {
  transport: 'UDP' | 'TCP' | 'TLS';
  address: string;
  port: number;
  /** TLS to a server we connect to (a trunk's): the name its certificate must carry, and the CAs it must chain to (undefined: the system's) */
  tls?: { servername: string; ca: Buffer | undefined };
}
