/** The part of s3rver (a local S3-compatible server, a devDependency) the tests use; it ships no types. */
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  interface BucketConfig {
    name: string;
    /** Bucket configuration documents (CORS, website), if any. */
    configs?: (string | Buffer)[];
  }

  interface S3rverOptions {
    port?: number;
    address?: string;
    silent?: boolean;
    directory: string;
    configureBuckets?: BucketConfig[];
  }

  export default class S3rver {
    constructor(options: S3rverOptions);
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}
