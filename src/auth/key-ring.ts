import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';

/**
 * The service's own token-signing keys (ES256). Tokens are signed with the newest key and checked
 * against every key in the ring, so a rotation never invalidates a token already handed out: the
 * old key stays until the tokens it signed have expired (they live at most 5 minutes).
 * With SIGNING_KEYS_FILE the ring is shared by every instance and survives restarts.
 */
interface RingKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  createdAt: number;
}

export class KeyRing {
  private keys: RingKey[] = [];
  /** The shared file's mtime when last read: it is read again only once it has changed. */
  private mergedVersion = -1;

  private constructor(private readonly file?: string) {}

  static async create(file?: string): Promise<KeyRing> {
    const ring = new KeyRing(file);
    await ring.merge();
    if (ring.keys.length === 0) await ring.rotate();
    return ring;
  }

  /** Adds the keys of the shared file that this ring lacks (another instance rotated). */
  private async merge(): Promise<void> {
    if (!this.file || !existsSync(this.file)) return;
    this.mergedVersion = statSync(this.file).mtimeMs;
    const stored = JSON.parse(readFileSync(this.file, 'utf8')) as { keys: (JWK & { created_at?: number })[] };
    for (const jwk of stored.keys) {
      if (this.find(jwk.kid)) continue;
      const { d: _d, created_at: _c, ...publicJwk } = jwk;
      this.keys.push({
        kid: jwk.kid as string,
        // Extractable, as a generated key is: save() exports every key when this ring rotates.
        privateKey: (await importJWK(jwk, 'ES256', { extractable: true })) as CryptoKey,
        publicKey: (await importJWK(publicJwk, 'ES256')) as CryptoKey,
        publicJwk,
        createdAt: jwk.created_at ?? 0,
      });
    }
    this.keys.sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * A key by id for verifying: a kid this ring does not know may be another instance's newer key,
   * so the shared file is read again, if it changed since (unknown kids cost a stat, not a read).
   */
  async resolve(kid: string | undefined): Promise<RingKey | undefined> {
    const found = this.find(kid);
    if (found || !kid || !this.file || !existsSync(this.file)) return found;
    if (statSync(this.file).mtimeMs === this.mergedVersion) return undefined;
    await this.merge();
    return this.find(kid);
  }

  get current(): RingKey {
    return this.keys[this.keys.length - 1] as RingKey;
  }

  find(kid: string | undefined): RingKey | undefined {
    return this.keys.find((k) => k.kid === kid);
  }

  /** Adds a new signing key and drops keys older than `keepMs` (other than the new one). */
  async rotate(keepMs = 15 * 60_000): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
    // With a shared file, keep the keys other instances added (their tokens must keep verifying).
    await this.merge();
    const now = Date.now();
    this.keys = [
      ...this.keys.filter((k) => now - k.createdAt < keepMs),
      { kid, privateKey, publicKey, publicJwk, createdAt: now },
    ];
    await this.save();
  }

  publicJwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  private async save(): Promise<void> {
    if (!this.file) return;
    const keys = await Promise.all(
      this.keys.map(async (k) => ({
        ...(await exportJWK(k.privateKey)),
        kid: k.kid,
        alg: 'ES256',
        use: 'sig',
        created_at: k.createdAt,
      })),
    );
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(this.file, JSON.stringify({ keys }, null, 2), { mode: 0o600 });
  }
}
