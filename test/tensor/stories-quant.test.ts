/**
 * Acceptance: the F32 tensors of stories260K.gguf quantised to every GGUF type and decoded back
 * stay within each type's error bound. Rows are 64 or 172 wide, so each tensor is taken flat, in
 * whole blocks of the type, dropping a tail shorter than one block.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openGGUF } from '../../src/formats/gguf.js';
import { rowBytes } from '../../src/tensor/dtype.js';
import { dequantizeRow, quantizeRow } from '../../src/tensor/quant-gguf.js';
import { sharedPath } from './fixtures.js';
import { GGUF_TYPES, errorBounds } from './quant-bounds.js';

test('stories260K: every F32 tensor survives each GGUF type within its bound', () => {
  const g = openGGUF(sharedPath('models/stories260K/stories260K.gguf'));
  const tensors: { name: string; x: Float32Array }[] = [];
  try {
    for (const t of g.tensors.values()) {
      assert.equal(t.dtype, 'f32', `${t.name} is F32`);
      const n = t.shape.reduce((a, b) => a * b, 1);
      const x = new Float32Array(n);
      dequantizeRow('f32', g.read(t.name), x, n);
      tensors.push({ name: t.name, x });
    }
  } finally {
    g.close();
  }
  assert.equal(tensors.length, 48);
  let checked = 0;
  for (const [dtype, blockElems] of GGUF_TYPES) {
    for (const { name, x } of tensors) {
      const count = x.length - (x.length % blockElems);
      if (count === 0) continue; // a 1-D norm of 64 has no whole 256-block
      const bytes = new Uint8Array(rowBytes(dtype, count));
      quantizeRow(dtype, x, bytes, count);
      const y = new Float32Array(count);
      dequantizeRow(dtype, bytes, y, count);
      const bound = errorBounds(dtype, blockElems, x, count);
      for (let i = 0; i < count; i++) {
        const err = Math.abs(y[i] - x[i]);
        if (!(err <= bound[i])) assert.fail(`${dtype} ${name}[${i}]: ${x[i]} → ${y[i]}, error ${err} > bound ${bound[i]}`);
      }
      checked += count;
    }
  }
  assert.ok(checked > 16 * 250_000, `checked ${checked} elements`);
});
