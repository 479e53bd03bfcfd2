/**
 * Random-access byte sources: weight files are read by offset, piece by piece, straight into the
 * caller's memory, so a multi-GB file never has to fit in one Buffer.
 */
import * as fs from 'node:fs';
import { FormatError } from './errors.js';

export interface ByteSource {
  /** File path (or a label for in-memory bytes); every error names it. */
  readonly name: string;
  readonly size: number;
  /** Fills all of `dst` from `offset` on, or throws a FormatError naming the missing range. */
  read(offset: number, dst: Uint8Array): void;
  close(): void;
}

// fs.readSync moves at most 2^31 − 1 bytes per call; stay well below.
const MAX_READ = 1 << 30;

/** A file read with positional fs.readSync; offsets are JS numbers (exact to 2^53). */
export function openFileSource(path: string): ByteSource {
  let fd: number | undefined = fs.openSync(path, 'r');
  const size = fs.fstatSync(fd).size;
  return {
    name: path,
    size,
    read(offset: number, dst: Uint8Array): void {
      if (fd === undefined) throw new Error(`${path}: read after close`);
      checkRange(path, size, offset, dst.length);
      let done = 0;
      while (done < dst.length) {
        const want = Math.min(dst.length - done, MAX_READ);
        const got = fs.readSync(fd, dst, done, want, offset + done);
        // The size came from fstat at open; a short read means the file shrank since.
        if (got === 0) throw new FormatError(path, `truncated: reading ${dst.length} bytes at byte ${offset} stopped at byte ${offset + done} (file changed while open?)`);
        done += got;
      }
    },
    close(): void {
      if (fd !== undefined) fs.closeSync(fd);
      fd = undefined;
    },
  };
}

/** Bytes already in memory, behind the same interface (tests, fuzzing, small embedded files). */
export function bufferSource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.length,
    read(offset: number, dst: Uint8Array): void {
      checkRange(name, bytes.length, offset, dst.length);
      dst.set(bytes.subarray(offset, offset + dst.length));
    },
    close(): void {},
  };
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`${name}: bad read offset ${offset}`);
  if (offset + length > size) {
    throw new FormatError(name, `truncated: reading ${length} bytes at byte ${offset} needs ${offset + length} bytes but the file has ${size}`);
  }
}
