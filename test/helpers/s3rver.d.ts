// The part of s3rver (an S3-compatible server for tests, without type declarations of its own)
// that the tests use.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  interface BucketConfig {
    name: string;
    configs: (string | Buffer)[];
  }

  interface S3rverOptions {
    address?: string;
    port?: number;
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
