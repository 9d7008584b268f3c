/**
 * The S3 plugin against a local S3-compatible server (s3rver, started here on loopback), and
 * native nbdkit's S3 plugin (Python, boto3) serving the same bucket: each reads what the
 * other wrote, object by object.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runNbdkitTs } from './helpers/server.js';

let dir: string;
let server: S3rver;
let endpoint: string;
let s3: S3Client;
const BUCKET = 'disks';
const K = 64 * 1024;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-s3-'));
  server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: BUCKET }] });
  const { port } = await server.run();
  endpoint = `http://127.0.0.1:${port}`;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  // s3rver's fixed test credentials.
  s3 = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});
afterAll(async () => {
  s3.destroy();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function s3Args(key: string, extra: string[] = []): string[] {
  return ['S3', `endpoint-url=${endpoint}`, `bucket=${BUCKET}`, `key=${key}`, 'access-key=S3RVER', 'secret-key=S3RVER', ...extra];
}

/** Run an nbdsh script under nbdkit-ts or native nbdkit's S3 plugin; returns stdout. */
async function nbdsh(native: boolean, args: string[], script: string): Promise<string> {
  const command = ['-U', '-', ...args, '--run', `nbdsh -u "$uri" -c '${script}'`];
  const result = native ? await run('nbdkit', command) : await runNbdkitTs(command);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.toString().trim();
}

async function objectKeys(prefix: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key!).sort();
}

describe('S3 plugin', () => {
  it('a disk over objects: what nbdkit-ts writes native nbdkit reads, and back', async () => {
    const split = ['size=1M', 'object-size=64K'];
    await nbdsh(false, s3Args('ours', split), `h.pwrite(b"A" * ${K}, ${K}); h.pwrite(b"B" * ${2 * K}, ${3 * K}); h.set_strict_mode(h.get_strict_mode() & ~nbd.STRICT_ALIGN); h.pwrite(b"c" * 100, ${6 * K + 10})`);
    // One object per written block, named as native nbdkit names them.
    expect(await objectKeys('ours/')).toEqual(['ours/0000000000000001', 'ours/0000000000000003', 'ours/0000000000000004', 'ours/0000000000000006']);
    const read = `print(bytes(h.pread(${K}, ${K}))[:2], bytes(h.pread(${K}, ${4 * K}))[:2], bytes(h.pread(${K}, ${6 * K}))[8:12], bytes(h.pread(${K}, 0))[:2])`;
    const expected = "b'AA' b'BB' b'\\x00\\x00cc' b'\\x00\\x00'";
    expect(await nbdsh(true, s3Args('ours', split), read)).toBe(expected);

    await nbdsh(true, s3Args('theirs', split), `h.pwrite(b"N" * ${2 * K}, ${2 * K})`);
    expect(await nbdsh(false, s3Args('theirs', split), `print(bytes(h.pread(${K}, ${3 * K}))[:2], bytes(h.pread(${K}, ${K}))[:2])`)).toBe("b'NN' b'\\x00\\x00'");
  });

  it('zero and trim delete whole objects; what remains reads the same under native nbdkit', async () => {
    const split = ['size=1M', 'object-size=64K'];
    await nbdsh(false, s3Args('z', split), `h.pwrite(b"x" * ${8 * K}, 0); h.zero(${3 * K}, ${K}); h.trim(${2 * K}, ${5 * K})`);
    expect(await objectKeys('z/')).toEqual(['z/0000000000000000', 'z/0000000000000004', 'z/0000000000000007']);
    const read = `print([bytes(h.pread(${K}, i * ${K}))[:1] for i in range(8)])`;
    const ours = await nbdsh(false, s3Args('z', split), read);
    expect(ours).toBe("[b'x', b'\\x00', b'\\x00', b'\\x00', b'x', b'\\x00', b'\\x00', b'x']");
    expect(await nbdsh(true, s3Args('z', split), read)).toBe(ours);
  });

  it('one object: read-only, its size the object\'s, the same bytes and capabilities as native', async () => {
    const data = randomBytes(300 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'single.img', Body: data }));
    const info = 'nbdinfo --json "$uri"; nbdcopy "$uri" - | md5sum';
    const ours = await runNbdkitTs(['-U', '-', ...s3Args('single.img'), '--run', info]);
    const native = await run('nbdkit', ['-U', '-', ...s3Args('single.img'), '--run', info]);
    expect(ours.code, ours.stderr).toBe(0);
    const clean = (text: string): string => text.replace(/"uri": ".*"/g, '');
    expect(clean(ours.stdout.toString())).toBe(clean(native.stdout.toString()));
    expect(ours.stdout.toString()).toMatch(/"export-size": 307200/);
    expect(ours.stdout.toString()).toMatch(/"is_read_only": true/);
    // Nothing was written to the object.
    const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'single.img' }))).Body!.transformToByteArray();
    expect(Buffer.from(body).equals(data)).toBe(true);
  });

  it('refuses bad parameters as native nbdkit does', async () => {
    for (const [args, message] of [
      [['S3', 'key=k'], /bucket parameter missing/],
      [['S3', 'bucket=b'], /key parameter missing/],
      [['S3', 'bucket=b', 'key=k', 'size=1M'], /`size` and `object-size` parameters must always be specified together/],
      [['S3', 'bucket=b', 'key=k', 'size=1M', 'object-size=3K'], /`size` must be a multiple of `object-size`/],
    ] as const) {
      const result = await runNbdkitTs(['-U', '-', ...args, '--run', 'true']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(message);
    }
  });
});
