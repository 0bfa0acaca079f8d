import { describe, expect, it } from 'vitest';
import { isInternalAddress } from '../../src/delivery/endpoint-policy.js';

/**
 * Issue 11, item 9: the ranges a rest-hook may not reach unless allowed — loopback, private,
 * CGNAT, link-local (and the metadata addresses), unique-local IPv6, reserved — also when an IPv4
 * address travels inside IPv6 (mapped, NAT64, 6to4).
 */
describe('which addresses are inside the network', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.169.254',
    '0.0.0.0',
    '::1',
    '::',
    'fd00:ec2::254',
    'fc00::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '2002:7f00:1::1',
  ])('%s is internal', (address) => {
    expect(isInternalAddress(address)).toBe(true);
  });
  it.each(['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '172.32.0.1', '100.128.0.1'])(
    '%s is public',
    (address) => {
      expect(isInternalAddress(address)).toBe(false);
    },
  );
});
