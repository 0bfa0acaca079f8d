import { BlockList, isIP } from 'node:net';

/**
 * Where notifications may go. A rest-hook endpoint is chosen by a client, so without a rule the
 * service would POST wherever a client points it — its own admin ports, the cloud metadata
 * service, the practice's internal network (server-side request forgery). The rule: https only,
 * and never to an address in the ranges below, decided on the address actually connected to at
 * send time (a name can resolve elsewhere later), unless the operator allows the host
 * (`DELIVERY_ALLOWED_HOSTS`: host names, or CIDRs; plain http is allowed for those). Outside
 * production, loopback is allowed (local development, tests: receivers on 127.0.0.1), with a
 * warning at start-up.
 */
export interface EndpointPolicy {
  /** Host names (lower case) and CIDR ranges the operator allows, private or not, http or https. */
  allowedHosts: readonly string[];
  /** Loopback addresses and `localhost` allowed (default outside production). */
  allowLoopback: boolean;
}

/** Not public unicast: loopback, private (RFC 1918), CGNAT, link-local (and cloud metadata), reserved. */
const BLOCKED_V4: [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, and 169.254.169.254 (metadata)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];
const BLOCKED_V6: [string, number][] = [
  ['::', 128],
  ['::1', 128],
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local, and fd00:ec2::254 (metadata)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const blocked = new BlockList();
for (const [net, prefix] of BLOCKED_V4) blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of BLOCKED_V6) blocked.addSubnet(net, prefix, 'ipv6');

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/** An IPv4 address carried in IPv6 (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16), or undefined. */
function embeddedIPv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const words = expandIPv6(lower);
  if (!words) return undefined;
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number): boolean => words.slice(from, to).every((w) => w === 0);
  if (zero(0, 5) && words[5] === 0xffff) return v4(words[6] as number, words[7] as number);
  if (words[0] === 0x64 && words[1] === 0xff9b && zero(2, 6))
    return v4(words[6] as number, words[7] as number);
  if (words[0] === 0x2002) return v4(words[1] as number, words[2] as number);
  return undefined;
}

function expandIPv6(address: string): number[] | undefined {
  if (isIP(address) !== 6 || address.includes('.')) return undefined;
  const [head = '', tail] = address.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((w) => parseInt(w, 16));
}

/** Whether an IP address is outside public unicast (see the ranges above). */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 4) return blocked.check(address, 'ipv4');
  const v4 = embeddedIPv4(address);
  if (v4) return blocked.check(v4, 'ipv4');
  return blocked.check(address, 'ipv6');
}

export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return loopback.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIPv4(address);
    return v4 ? loopback.check(v4, 'ipv4') : loopback.check(address, 'ipv6');
  }
  return false;
}

/** `DELIVERY_ALLOWED_HOSTS` read once: names and ranges. */
export class EndpointRules {
  private readonly names = new Set<string>();
  private readonly ranges = new BlockList();

  constructor(readonly policy: EndpointPolicy) {
    for (const entry of policy.allowedHosts) {
      const [net = '', prefix] = entry.split('/');
      const family = isIP(net);
      if (family !== 0) {
        const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
        this.ranges.addSubnet(net, bits, family === 4 ? 'ipv4' : 'ipv6');
      } else {
        this.names.add(entry.toLowerCase());
      }
    }
  }

  /** A host (name or IP literal, without brackets) the operator allows outright. */
  isAllowedHost(host: string): boolean {
    const h = host.toLowerCase();
    if (this.names.has(h)) return true;
    if (this.policy.allowLoopback && (h === 'localhost' || isLoopbackAddress(h))) return true;
    return isIP(h) !== 0 && this.isAllowedAddress(h);
  }

  /** Whether the service may connect to `address` (the one DNS answered, or the literal). */
  mayConnect(address: string, host: string): boolean {
    if (this.names.has(host.toLowerCase())) return true;
    if (this.isAllowedAddress(address)) return true;
    if (this.policy.allowLoopback && isLoopbackAddress(address)) return true;
    return !isInternalAddress(address);
  }

  private isAllowedAddress(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.ranges.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * Why `endpoint` is refused when a Subscription is written, or undefined: plain http to a host
   * not allowed, or an IP literal inside the network. Names are checked again, resolved, at send time.
   */
  endpointProblem(endpoint: string): string | undefined {
    if (!URL.canParse(endpoint)) return undefined; // the settings already report it
    const url = new URL(endpoint);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (this.isAllowedHost(host)) return undefined;
    if (url.protocol !== 'https:') return 'Subscription.channel.endpoint must be an https URL';
    if (url.username || url.password) return 'Subscription.channel.endpoint may not carry credentials';
    if (isIP(host) !== 0 && isInternalAddress(host)) {
      return 'Subscription.channel.endpoint may not be a loopback, private, link-local or reserved address';
    }
    if (host === 'localhost' || host.endsWith('.localhost')) {
      return 'Subscription.channel.endpoint may not be a loopback address';
    }
    return undefined;
  }
}
