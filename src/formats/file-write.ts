/** Writing weight files: positional writes into a temporary file, renamed into place when complete. */
import * as fs from 'node:fs';

// One fs.writeSync call moves at most 2 GiB.
const MAX_WRITE = 1 << 30;

/**
 * Calls `fill` with a positional `write`, then sets the file to `size` bytes (padding after the last
 * piece) and renames it to `path`. On any error the partial file is removed.
 */
export function writeFileAtomically(path: string, size: number, fill: (write: (data: Uint8Array, position: number) => void) => void): void {
  const tmp = `${path}.partial-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fill((data, position) => {
      for (let done = 0; done < data.length;) {
        done += fs.writeSync(fd, data, done, Math.min(MAX_WRITE, data.length - done), position + done);
      }
    });
    fs.ftruncateSync(fd, size);
    fs.closeSync(fd);
    fs.renameSync(tmp, path);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
