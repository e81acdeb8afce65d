// `sentinel keygen`: makes a release signing key pair on the (ideally offline) signing machine.
import { generateKeyFiles } from './key-files.js';
import { printJson, printLines } from './output.js';

// Writes PREFIX.key (0600, O_EXCL) and PREFIX.pub and says what to do with each.
export async function runKeygen(opts: { out: string; comment?: string; json?: boolean }): Promise<void> {
  const r = await generateKeyFiles(opts.out, opts.comment);
  if (opts.json === true) {
    printJson({ ok: true, keyId: r.keyId, secretKey: r.keyPath, publicKey: r.pubPath });
    return;
  }
  printLines(
    `key id ${r.keyId}`,
    `secret key: ${r.keyPath} (mode 0600; keep it offline, never on the guarded host, never in git)`,
    `public key: ${r.pubPath} (copy to /etc/omnimind-sentinel/keys/ on each host)`,
  );
}
