/**
 * S3: a disk kept in S3-compatible object storage, as nbdkit-S3-plugin(1), on the AWS SDK's
 * S3 client. Either one object (key=, read-only, its size the object's), or, with size= and
 * object-size=, a disk split over objects named KEY/%016x (the block number), where a
 * missing object reads as zeroes, writes replace whole objects, and trims delete them.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { FuaMode, type Plugin, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';

const CONFIG_HELP = `access-key=<KEY>       AWS access key (default: the SDK's credential chain).
secret-key=<KEY>       AWS secret key.
session-token=<TOKEN>  AWS session token.
endpoint-url=<URL>     The S3 endpoint (default: AWS's).
bucket=<NAME>          (required) The bucket.
key=<KEY>              (required) The object, or the prefix of the objects.
size=<SIZE>            The disk size, with object-size=.
object-size=<SIZE>     The size of each object of a disk split over objects.`;

interface S3Error {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function isNoSuchKey(error: unknown): boolean {
  const e = error as S3Error;
  return e.name === 'NoSuchKey' || e.Code === 'NoSuchKey' || e.name === 'NotFound';
}

/** Errors that the native plugin maps to ETIMEDOUT (its connection timeouts). */
function asPluginError(error: unknown, what: string): PluginError {
  if (error instanceof PluginError) return error;
  const e = error as NodeJS.ErrnoException & S3Error;
  const timedOut = e.name === 'TimeoutError' || e.code === 'ETIMEDOUT' || e.code === 'ECONNRESET';
  return new PluginError(`${what}: ${e.name ?? 'Error'}: ${e.message}`, timedOut ? 'ETIMEDOUT' : 'EIO');
}

const createS3Plugin: PluginFactory = (host) => {
  let accessKey: string | undefined;
  let secretKey: string | undefined;
  let sessionToken: string | undefined;
  let endpointUrl: string | undefined;
  let bucket: string | undefined;
  let key: string | undefined;
  let devSize: bigint | undefined;
  let objSize: bigint | undefined;
  let client: S3Client | undefined;

  /** Serialises read-modify-write of one object, as the native plugin's obj_lock. */
  const objectLocks = new Map<string, Promise<void>>();
  async function withObjectLock<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = objectLocks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = previous.then(() => mine);
    objectLocks.set(name, chained);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (objectLocks.get(name) === chained) objectLocks.delete(name);
    }
  }

  function s3(): S3Client {
    if (client) return client;
    const config: S3ClientConfig = {
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      // Checksums only where S3 requires them: S3-compatible servers seldom know the newer ones.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (endpointUrl !== undefined) {
      config.endpoint = endpointUrl;
      // A local endpoint has no DNS name per bucket: address buckets by path, as boto3 does.
      config.forcePathStyle = true;
    }
    if (accessKey !== undefined && secretKey !== undefined) {
      config.credentials = { accessKeyId: accessKey, secretAccessKey: secretKey, sessionToken };
    }
    // The SDK warns on stderr, once, that its future releases will need Node 22: a message for
    // developers, not for the users of a disk, so it is silenced while the client is made.
    const silence = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
    const before = process.env[silence];
    process.env[silence] = 'true';
    try {
      client = new S3Client(config);
    } finally {
      if (before === undefined) delete process.env[silence];
      else process.env[silence] = before;
    }
    return client;
  }

  function objectName(block: bigint): string {
    return `${key}/${block.toString(16).padStart(16, '0')}`;
  }

  /** `size` bytes of an object from `offset`; a missing object reads as zeroes. */
  async function getObject(name: string, size: number, offset: bigint): Promise<Uint8Array> {
    try {
      const response = await s3().send(
        new GetObjectCommand({ Bucket: bucket, Key: name, Range: `bytes=${offset}-${offset + BigInt(size) - 1n}` }),
      );
      const body = await response.Body!.transformToByteArray();
      if (body.length !== size) throw new PluginError(`${name}: requested ${size} bytes, got ${body.length}`);
      return body;
    } catch (error) {
      if (isNoSuchKey(error)) return new Uint8Array(size);
      throw error;
    }
  }

  async function putObject(name: string, data: Uint8Array): Promise<void> {
    if (BigInt(data.length) !== objSize) throw new PluginError(`${name}: internal error: object of ${data.length} bytes`);
    await s3().send(new PutObjectCommand({ Bucket: bucket, Key: name, Body: data, ContentLength: data.length }));
  }

  async function pwriteObjects(data: Uint8Array, offset: bigint): Promise<void> {
    const size = objSize!;
    let block = offset / size;
    let within = offset % size;
    let done = 0;
    while (done < data.length) {
      const length = Math.min(data.length - done, Number(size - within));
      const part = data.subarray(done, done + length);
      const name = objectName(block);
      if (within === 0n && BigInt(length) === size) {
        await withObjectLock(name, () => putObject(name, part));
      } else {
        host.debug(`pwrite: write at offset ${offset} not aligned: rewriting block ${block}`);
        await withObjectLock(name, async () => {
          const whole = new Uint8Array(await getObject(name, Number(size), 0n));
          whole.set(part, Number(within));
          await putObject(name, whole);
        });
      }
      done += length;
      block++;
      within = 0n;
    }
  }

  /** Delete the objects of blocks first (inclusive) to last (exclusive) that exist. */
  async function deleteObjects(first: bigint, last: bigint): Promise<void> {
    if (first >= last) return;
    host.debug(`Deleting objects ${first} to ${last}...`);
    const lastKey = objectName(last);
    let token: string | undefined;
    const startAfter = first === 0n ? undefined : objectName(first - 1n);
    for (;;) {
      const listed = await s3().send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: `${key}/`, StartAfter: startAfter, ContinuationToken: token }),
      );
      const keys = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k < lastKey);
      for (let i = 0; i < keys.length; i += 1000) {
        const response = await s3().send(
          new DeleteObjectsCommand({
            Bucket: bucket,
            Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true },
          }),
        );
        if (response.Errors?.length) throw new PluginError(`Failed to delete objects: ${JSON.stringify(response.Errors)}`);
      }
      const more = (listed.Contents ?? []).some((o) => o.Key! >= lastKey);
      if (!listed.IsTruncated || more) return;
      token = listed.NextContinuationToken;
    }
  }

  async function trimObjects(count: number, offset: bigint): Promise<void> {
    const size = objSize!;
    let first = offset / size;
    if (offset % size !== 0n) first++;
    await deleteObjects(first, (offset + BigInt(count)) / size);
  }

  const plugin: Plugin = {
    name: 'S3',
    longname: 'nbdkit S3 plugin',
    description: 'A disk in S3-compatible object storage.',
    config_help: CONFIG_HELP,

    config(name, value) {
      switch (name) {
        case 'access-key':
        case 'access_key':
          accessKey = value;
          break;
        case 'secret-key':
        case 'secret_key':
          secretKey = value;
          break;
        case 'session-token':
        case 'session_token':
          sessionToken = value;
          break;
        case 'endpoint-url':
        case 'endpoint_url':
          endpointUrl = value;
          break;
        case 'bucket':
          bucket = value;
          break;
        case 'key':
          key = value;
          break;
        case 'size':
          devSize = host.parseSize(value);
          break;
        case 'object-size':
          objSize = host.parseSize(value);
          break;
        default:
          throw new PluginError(`unknown parameter ${name}`, 'EINVAL');
      }
    },
    config_complete() {
      if (bucket === undefined) throw new PluginError('bucket parameter missing', 'EINVAL');
      if (key === undefined) throw new PluginError('key parameter missing', 'EINVAL');
      if (!devSize !== !objSize) {
        throw new PluginError('`size` and `object-size` parameters must always be specified together', 'EINVAL');
      }
      if (devSize && devSize % objSize! !== 0n) throw new PluginError('`size` must be a multiple of `object-size`', 'EINVAL');
      if (objSize !== undefined && objSize > 0x7fffffffn) throw new PluginError('object-size: too large', 'EINVAL');
    },
    thread_model: () => ThreadModel.PARALLEL,
    unload() {
      client?.destroy();
    },

    open: () => ({}),
    async get_size() {
      if (devSize) return devSize;
      try {
        const head = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return BigInt(head.ContentLength ?? 0);
      } catch (error) {
        throw asPluginError(error, `${bucket}/${key}`);
      }
    },
    block_size() {
      // One object per request when split: anything else costs a read-modify-write.
      if (!objSize) return { minimum: 1, preferred: 512 * 1024, maximum: 0xffffffff };
      const n = Number(objSize);
      return { minimum: n, preferred: n, maximum: n };
    },
    is_rotational: () => false,
    can_write: () => objSize !== undefined,
    can_multi_conn: () => true,
    can_flush: () => true,
    can_trim: () => objSize !== undefined,
    can_zero: () => objSize !== undefined,
    can_fast_zero: () => objSize !== undefined,
    // Every write is durable when it returns.
    can_fua: () => FuaMode.NATIVE,
    can_extents: () => false,

    async pread(_h, buf, offset) {
      try {
        if (!objSize) {
          buf.set(await getObject(key!, buf.length, offset));
          return;
        }
        let block = offset / objSize;
        let within = offset % objSize;
        let done = 0;
        while (done < buf.length) {
          const length = Math.min(buf.length - done, Number(objSize - within));
          buf.set(await getObject(objectName(block), length, within), done);
          done += length;
          block++;
          within = 0n;
        }
      } catch (error) {
        throw asPluginError(error, 'pread');
      }
    },
    async pwrite(_h, buf, offset) {
      try {
        await pwriteObjects(buf, offset);
      } catch (error) {
        throw asPluginError(error, 'pwrite');
      }
    },
    flush: () => undefined,
    async trim(_h, count, offset) {
      try {
        await trimObjects(count, offset);
      } catch (error) {
        throw asPluginError(error, 'trim');
      }
    },
    async zero(_h, count, offset) {
      // Whole objects are deleted (a missing object reads as zeroes, as in the native plugin,
      // whether or not the client allowed trimming); the parts at either end are written.
      try {
        const size = objSize!;
        const end = offset + BigInt(count);
        const firstWhole = offset % size === 0n ? offset : (offset / size + 1n) * size;
        const lastWhole = (end / size) * size;
        if (firstWhole >= lastWhole) return await pwriteObjects(new Uint8Array(count), offset);
        if (firstWhole > offset) await pwriteObjects(new Uint8Array(Number(firstWhole - offset)), offset);
        if (end > lastWhole) await pwriteObjects(new Uint8Array(Number(end - lastWhole)), lastWhole);
        await deleteObjects(firstWhole / size, lastWhole / size);
      } catch (error) {
        throw asPluginError(error, 'zero');
      }
    },
  };
  return plugin;
};

export default createS3Plugin;
