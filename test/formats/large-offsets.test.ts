// Files past 4 GiB: a sparse ~5 GiB file per format (the hole takes no disk space), with a
// 4.5 GiB tensor of zeros and a small tensor after it whose bytes are real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openGGUF } from '../../src/formats/gguf.js';
import { layoutGGUF } from '../../src/formats/gguf-writer.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { layoutSafetensors } from '../../src/formats/safetensors-writer.js';
import { openFileSource } from '../../src/formats/source.js';
import type { WeightFile } from '../../src/formats/weight-file.js';

const GIB = 2 ** 30;
const BIG_ROWS = 4608, BIG_COLS = 1 << 20; // 4.5 GiB of i8, 4.8e9 elements (> 2^32)
const noData = (): Uint8Array => { throw new Error('layout only'); };
const tail = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);
const marker = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);

/** Writes header and the few real bytes into a sparse file of `size` bytes. */
function sparseFile(file: string, size: number, pieces: [Uint8Array, number][]): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (const [data, at] of pieces) fs.writeSync(fd, data, 0, data.length, at);
  } finally {
    fs.closeSync(fd);
  }
}

function checkFile(f: WeightFile, bigOffset: number): void {
  const big = f.tensors.get('big')!;
  const t = f.tensors.get('tail')!;
  assert.equal(big.byteLength, BIG_ROWS * BIG_COLS);
  assert.deepEqual(big.shape, [BIG_ROWS, BIG_COLS]);
  assert.equal(big.offset, bigOffset);
  assert.ok(t.offset > 4 * GIB, `tail at ${t.offset}`);
  assert.deepEqual(t.shape, [4, 4]);
  assert.deepEqual(f.read('tail'), tail);
  // Bytes straddling the 4 GiB mark inside 'big', and the last row of 'big'.
  const at4g = 4 * GIB - big.offset;
  assert.deepEqual(f.readRange('big', at4g - 4, new Uint8Array(8)), marker);
  const lastRow = f.readRange('big', big.byteLength - BIG_COLS, new Uint8Array(BIG_COLS));
  assert.ok(lastRow.every((b) => b === 0));
}

function withTmp(body: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'minke-large-'));
  try {
    body(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('GGUF: tensor offsets and element counts past 4 GiB', () => {
  withTmp((dir) => {
    const file = path.join(dir, 'large.gguf');
    const layout = layoutGGUF({
      metadata: [['general.architecture', { type: 'string', value: 'test' }]],
      tensors: [
        { name: 'big', dtype: 'i8', shape: [BIG_ROWS, BIG_COLS], data: noData },
        { name: 'tail', dtype: 'f32', shape: [4, 4], data: noData },
      ],
    });
    assert.ok(layout.size > 4.5 * GIB);
    sparseFile(file, layout.size, [[layout.header, 0], [marker, 4 * GIB - 4], [tail, layout.tensors[1].offset]]);
    const src = openFileSource(file);
    const across = new Uint8Array(8);
    src.read(4 * GIB - 4, across);
    assert.deepEqual(across, marker);
    src.close();
    const g = openGGUF(file);
    try {
      assert.equal(g.tensors.get('tail')!.offset, layout.tensors[1].offset);
      assert.deepEqual(g.tensors.get('big')!.ne, [BIG_COLS, BIG_ROWS]);
      checkFile(g, g.dataOffset);
    } finally {
      g.close();
    }
  });
});

test('safetensors: tensor offsets and element counts past 4 GiB', () => {
  withTmp((dir) => {
    const file = path.join(dir, 'large.safetensors');
    const layout = layoutSafetensors([
      { name: 'big', dtype: 'i8', shape: [BIG_ROWS, BIG_COLS], data: noData },
      { name: 'tail', dtype: 'f32', shape: [4, 4], data: noData },
    ]);
    sparseFile(file, layout.size, [[layout.header, 0], [marker, 4 * GIB - 4], [tail, layout.tensors[1].offset]]);
    const f = openSafetensors(file);
    try {
      checkFile(f, layout.header.length);
    } finally {
      f.close();
    }
  });
});
