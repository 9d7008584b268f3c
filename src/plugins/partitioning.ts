/**
 * partitioning: `nbdkit-ts partitioning boot.img swap.img root.img`, a partitioned disk made of
 * host files, one per partition, behind a virtual MBR or GPT partition table
 * (nbdkit-partitioning-plugin(1)). Parameters, in order, apply to the files after them:
 * `partition-type=mbr|gpt`, `alignment=N` (default 1M), `mbr-id=0xN|default`,
 * `type-guid=GUID|default`.
 *
 * The layout follows nbdkit's exactly (partition table, padding to each file's alignment,
 * files rounded up to whole sectors, EBRs before logical partitions when MBR has more than four
 * files, GPT's backup table at the end), so the disk is byte for byte native nbdkit's except
 * for the GPT unique partition GUIDs, which are random in both.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { describeFsError } from '../host/errno.js';
import { CacheMode, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { parseUnsigned, unknownParameter } from './parse-number.js';

const SECTOR = 512n;
const MAX_ALIGNMENT = 2048n * SECTOR;
const MAX_MBR_DISK_SIZE = 0xffffffffn * SECTOR - 5n * MAX_ALIGNMENT;
const DEFAULT_MBR_ID = 0x83;
const DEFAULT_TYPE_GUID = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const GPT_MIN_PARTITIONS = 128n;
const GPT_ENTRY_SIZE = 128;
/** sizeof nbdkit's struct gpt_header: 92 bytes of fields, padded to 96 (what it writes and checksums). */
const GPT_HEADER_SIZE = 96;

interface PartitionFile {
  name: string;
  fd: number;
  size: bigint;
  alignment: bigint;
  mbrId: number;
  typeGuid: Uint8Array;
  uniqueGuid: Uint8Array;
}

type Region =
  | { start: bigint; end: bigint; type: 'file'; file: number }
  | { start: bigint; end: bigint; type: 'data'; data: Uint8Array }
  | { start: bigint; end: bigint; type: 'zero' };

/** A GUID as written (mixed-endian: the first three groups little-endian), or undefined if malformed. */
export function parseGuid(text: string): Uint8Array | undefined {
  let s = text;
  if (s.length === 38 && s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(s)) return undefined;
  const hex = (at: number): number => parseInt(s.slice(at, at + 2), 16);
  return Uint8Array.from([
    hex(6), hex(4), hex(2), hex(0),
    hex(11), hex(9),
    hex(16), hex(14),
    hex(19), hex(21),
    hex(24), hex(26), hex(28), hex(30), hex(32), hex(34),
  ]);
}

/** The disk's pieces, in order, without gaps. */
class Layout {
  readonly regions: Region[] = [];

  get size(): bigint {
    const last = this.regions[this.regions.length - 1];
    return last ? last.end + 1n : 0n;
  }

  private padTo(alignment: bigint): void {
    const start = this.size;
    if (start % alignment === 0n) return;
    this.regions.push({ start, end: (start / alignment + 1n) * alignment - 1n, type: 'zero' });
  }

  addData(data: Uint8Array): Region {
    const start = this.size;
    const region: Region = { start, end: start + BigInt(data.length) - 1n, type: 'data', data };
    this.regions.push(region);
    return region;
  }

  addFile(file: number, length: bigint, alignment: bigint): Region {
    this.padTo(alignment);
    const start = this.size;
    const region: Region = { start, end: start + length - 1n, type: 'file', file };
    this.regions.push(region);
    this.padTo(SECTOR);
    return region;
  }

  /** The region holding offset (binary search). */
  find(offset: bigint): Region {
    let low = 0;
    let high = this.regions.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.regions[middle].start <= offset) low = middle;
      else high = middle - 1;
    }
    return this.regions[low];
  }
}

/** CHS fields for "beyond what CHS can say", as every modern partitioner writes them. */
function chsTooLarge(out: Uint8Array, at: number): void {
  out[at] = 254;
  out[at + 1] = ((1023 & 0x300) >> 2) | 63;
  out[at + 2] = 1023 & 0xff;
}

/** One 16-byte MBR partition entry for [start, start+length) at out[at]. */
function mbrEntry(out: Uint8Array, at: number, start: bigint, length: bigint, bootable: boolean, id: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[at] = bootable ? 0x80 : 0;
  chsTooLarge(out, at + 1);
  out[at + 4] = id;
  chsTooLarge(out, at + 5);
  view.setUint32(at + 8, Number(start / SECTOR), true);
  view.setUint32(at + 12, Number((length + SECTOR - 1n) / SECTOR), true);
}

function buildMbr(files: PartitionFile[]): { layout: Layout } {
  const layout = new Layout();
  const mbr = new Uint8Array(512);
  layout.addData(mbr);
  const ebrs: Uint8Array[] = [];
  const ebrRegions: Region[] = [];
  const fileRegions: Region[] = [];
  files.forEach((file, i) => {
    if (files.length > 4 && i >= 3) {
      const ebr = new Uint8Array(512);
      ebrs.push(ebr);
      ebrRegions.push(layout.addData(ebr));
    }
    fileRegions.push(layout.addFile(i, file.size, file.alignment));
  });
  mbr[0x1fe] = 0x55;
  mbr[0x1ff] = 0xaa;
  const length = (r: Region): bigint => r.end - r.start + 1n;
  if (files.length <= 4) {
    files.forEach((file, i) => mbrEntry(mbr, 0x1be + 16 * i, fileRegions[i].start, length(fileRegions[i]), i === 0, file.mbrId));
    return { layout };
  }
  for (let i = 0; i < 3; i++) mbrEntry(mbr, 0x1be + 16 * i, fileRegions[i].start, length(fileRegions[i]), i === 0, files[i].mbrId);
  // The extended partition: from the first EBR to the end of the disk.
  const extendedStart = ebrRegions[0].start;
  mbrEntry(mbr, 0x1ee, extendedStart, layout.size - extendedStart, false, 0x0f);
  for (let i = 3; i < files.length; i++) {
    const ebr = ebrs[i - 3];
    const here = ebrRegions[i - 3];
    const file = fileRegions[i];
    ebr[0x1fe] = 0x55;
    ebr[0x1ff] = 0xaa;
    // The logical partition, relative to its EBR.
    mbrEntry(ebr, 0x1be, file.start - here.start, length(file), false, files[i].mbrId);
    if (i < files.length - 1) {
      // The next EBR, relative to the extended partition, and what it spans up to its file's end.
      const nextEbr = ebrRegions[i - 2];
      const nextFile = fileRegions[i + 1];
      mbrEntry(ebr, 0x1ce, nextEbr.start - extendedStart, nextFile.end - nextEbr.start + 1n, false, 0x0f);
    }
  }
  return { layout };
}

function buildGpt(files: PartitionFile[]): { layout: Layout } {
  const entries = ((BigInt(files.length) + GPT_MIN_PARTITIONS - 1n) / GPT_MIN_PARTITIONS) * GPT_MIN_PARTITIONS;
  const tableSectors = (entries * BigInt(GPT_ENTRY_SIZE)) / SECTOR;
  const layout = new Layout();
  const primary = new Uint8Array(Number((2n + tableSectors) * SECTOR));
  const secondary = new Uint8Array(Number((tableSectors + 1n) * SECTOR));
  layout.addData(primary);
  const fileRegions = files.map((file, i) => layout.addFile(i, file.size, file.alignment));
  layout.addData(secondary);
  const sectors = layout.size / SECTOR;

  // Protective MBR: one partition of type 0xee over the whole disk (as far as MBR can say).
  let end = layout.size - 1n;
  if (end > 0xffffffffn * SECTOR) end = 0xffffffffn * SECTOR;
  mbrEntry(primary, 0x1be, 512n, end - 512n + 1n, false, 0xee);
  primary[0x1fe] = 0x55;
  primary[0x1ff] = 0xaa;

  const writeTable = (out: Uint8Array): void => {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    fileRegions.forEach((region, i) => {
      const at = i * GPT_ENTRY_SIZE;
      out.set(files[i].typeGuid, at);
      out.set(files[i].uniqueGuid, at + 16);
      view.setBigUint64(at + 32, region.start / SECTOR, true);
      view.setBigUint64(at + 40, region.end / SECTOR, true);
      view.setBigUint64(at + 48, i === 0 ? 4n : 0n, true);
      // The name as given, in UTF-16LE, when it is short 7-bit ASCII.
      const name = files[i].name;
      const bytes = Buffer.from(name, 'latin1');
      if (bytes.length < 36 && bytes.every((b) => b < 128)) bytes.forEach((b, k) => (out[at + 56 + 2 * k] = b));
    });
  };
  const writeHeader = (table: Uint8Array, out: Uint8Array, isPrimary: boolean): void => {
    const view = new DataView(out.buffer, out.byteOffset, GPT_HEADER_SIZE);
    out.set(Buffer.from('EFI PART', 'latin1'), 0);
    out.set([0, 0, 1, 0], 8);
    view.setUint32(12, GPT_HEADER_SIZE, true);
    view.setBigUint64(24, isPrimary ? 1n : sectors - 1n, true);
    view.setBigUint64(32, isPrimary ? sectors - 1n : 1n, true);
    view.setBigUint64(40, 2n + tableSectors, true);
    view.setBigUint64(48, sectors - tableSectors - 2n, true);
    view.setBigUint64(72, isPrimary ? 2n : sectors - tableSectors - 1n, true);
    view.setUint32(80, Number(entries), true);
    view.setUint32(84, GPT_ENTRY_SIZE, true);
    view.setUint32(88, crc32(table.subarray(0, Number(entries) * GPT_ENTRY_SIZE)), true);
    view.setUint32(16, crc32(out.subarray(0, GPT_HEADER_SIZE)), true);
  };
  const primaryTable = primary.subarray(2 * 512);
  writeTable(primaryTable);
  writeHeader(primaryTable, primary.subarray(512, 1024), true);
  writeTable(secondary);
  writeHeader(secondary, secondary.subarray(Number(tableSectors * SECTOR)), false);
  return { layout };
}

function isZero(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0) return false;
  return true;
}

const createPartitioningPlugin: PluginFactory = (host) => {
  const files: PartitionFile[] = [];
  let alignment = MAX_ALIGNMENT;
  let mbrId = DEFAULT_MBR_ID;
  let typeGuid = parseGuid(DEFAULT_TYPE_GUID)!;
  let partitionType: 'mbr' | 'gpt' | undefined;
  let layout = new Layout();

  return {
    name: 'partitioning',
    longname: 'nbdkit partitioning plugin',
    description: 'A partitioned disk made of host files, behind a virtual MBR or GPT partition table.',
    magic_config_key: 'file',
    config_help: 'file=<FILENAME>  (required) File(s) containing partitions\npartition-type=mbr|gpt      Partition type',

    config(key, value) {
      switch (key) {
        case 'file': {
          let fd: number;
          try {
            fd = openSync(value, 'r+');
          } catch (error) {
            throw new PluginError(`${value}: ${describeFsError(error).text}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
          }
          const size = fstatSync(fd, { bigint: true }).size;
          if (size === 0n) {
            closeSync(fd);
            throw new PluginError(`${value}: zero length partitions are not allowed`, 'EINVAL');
          }
          files.push({ name: value, fd, size, alignment, mbrId, typeGuid, uniqueGuid: randomBytes(16) });
          break;
        }
        case 'partition-type': {
          const type = value.toLowerCase();
          if (type === 'mbr' || type === 'dos') partitionType = 'mbr';
          else if (type === 'gpt') partitionType = 'gpt';
          else throw new PluginError(`unknown partition-type: ${value}`, 'EINVAL');
          break;
        }
        case 'alignment': {
          const r = host.parseSize(value);
          if (!(r >= SECTOR && r <= MAX_ALIGNMENT)) {
            throw new PluginError(`partition alignment ${r} should be >= sector size ${SECTOR} and <= maximum alignment ${MAX_ALIGNMENT}`, 'EINVAL');
          }
          if (r % SECTOR !== 0n) throw new PluginError(`partition alignment ${r} should be a multiple of sector size ${SECTOR}`, 'EINVAL');
          // nbdkit aborts on an alignment that is not a power of 2; refuse it instead.
          if ((r & (r - 1n)) !== 0n) throw new PluginError(`partition alignment ${r} should be a power of 2`, 'EINVAL');
          alignment = r;
          break;
        }
        case 'mbr-id':
          mbrId = value.toLowerCase() === 'default' ? DEFAULT_MBR_ID : Number(parseUnsigned('mbr-id', value, 8));
          break;
        case 'type-guid': {
          const guid = value.toLowerCase() === 'default' ? parseGuid(DEFAULT_TYPE_GUID) : parseGuid(value);
          if (!guid) throw new PluginError(`could not validate GUID: ${value}`, 'EINVAL');
          typeGuid = guid;
          break;
        }
        default:
          throw unknownParameter(key);
      }
    },
    config_complete() {
      if (files.length === 0) throw new PluginError('at least one file= parameter must be supplied', 'EINVAL');
      const total = files.reduce((sum, file) => sum + file.size, 0n);
      const needsGpt = total > MAX_MBR_DISK_SIZE;
      if (partitionType === undefined) {
        partitionType = needsGpt || files.length > 4 ? 'gpt' : 'mbr';
        host.debug(`picking partition type ${partitionType.toUpperCase()}`);
      } else if (partitionType === 'mbr' && needsGpt) {
        throw new PluginError(
          `MBR partition table type supports a maximum virtual disk size of about 2 TB, but you requested ${files.length} partition(s) and a total size of ${total} bytes (> ${MAX_MBR_DISK_SIZE}).  Try using: partition-type=gpt`,
          'EINVAL',
        );
      }
    },
    get_ready() {
      layout = (partitionType === 'gpt' ? buildGpt(files) : buildMbr(files)).layout;
      if (!host.debugFlag?.('partitioning.regions')) return;
      for (const [i, r] of layout.regions.entries()) {
        host.debug(`region[${i}]: ${r.start.toString(16)}-${r.end.toString(16)} type=${r.type === 'file' ? files[r.file].name : r.type}`);
      }
    },
    unload() {
      for (const file of files) closeSync(file.fd);
    },
    thread_model: () => ThreadModel.PARALLEL,
    open: () => ({}),
    get_size: () => layout.size,
    can_multi_conn: () => true,
    can_cache: () => CacheMode.EMULATE,

    // Every byte of buf is written (or the read fails).
    pread_fills_buffer: true,
    pread(_h, buf, offset) {
      let done = 0;
      while (done < buf.length) {
        const position = offset + BigInt(done);
        const region = layout.find(position);
        const within = position - region.start;
        const n = Math.min(buf.length - done, Number(region.end - position + 1n));
        if (region.type === 'file') {
          const file = files[region.file];
          let got: number;
          try {
            got = readSync(file.fd, buf, done, n, within);
          } catch (error) {
            throw new PluginError(`pread: ${file.name}: ${describeFsError(error).text}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
          }
          if (got === 0) throw new PluginError(`pread: ${file.name}: unexpected end of file`, 'EIO');
          done += got;
          continue;
        }
        if (region.type === 'data') buf.set(region.data.subarray(Number(within), Number(within) + n), done);
        else buf.fill(0, done, done + n);
        done += n;
      }
    },
    pwrite(_h, buf, offset) {
      let done = 0;
      while (done < buf.length) {
        const position = offset + BigInt(done);
        const region = layout.find(position);
        const within = position - region.start;
        const n = Math.min(buf.length - done, Number(region.end - position + 1n));
        const piece = buf.subarray(done, done + n);
        if (region.type === 'file') {
          const file = files[region.file];
          try {
            done += writeSync(file.fd, piece, 0, n, Number(within));
          } catch (error) {
            throw new PluginError(`pwrite: ${file.name}: ${describeFsError(error).text}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
          }
          continue;
        }
        if (region.type === 'data') {
          // Writing the partition table is allowed only if it changes nothing.
          if (Buffer.compare(region.data.subarray(Number(within), Number(within) + n), piece) !== 0) {
            throw new PluginError('attempt to change partition table of virtual disk', 'EIO');
          }
        } else if (!isZero(piece)) throw new PluginError('write non-zeroes to padding region', 'EIO');
        done += n;
      }
    },
    flush() {
      for (const file of files) {
        try {
          fdatasyncSync(file.fd);
        } catch (error) {
          throw new PluginError(`fdatasync: ${describeFsError(error).text}`, (error as NodeJS.ErrnoException).code ?? 'EIO');
        }
      }
    },
  };
};

export default createPartitioningPlugin;
