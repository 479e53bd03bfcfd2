/**
 * WGSL kernels written against named ("logical") buffers, compiled per binding layout.
 *
 * A kernel names the tensors it reads and writes; the backend decides which GPU buffer each one
 * lives in. WebGPU forbids binding one buffer twice in a dispatch when either binding is writable
 * (y = a + y in place, q and kv as views of one buffer), so the program generated for a dispatch
 * binds each distinct buffer once and gives every logical buffer accessor functions over it,
 * with the view's byte offset read from the uniform parameters. All storage is `array<u32>`;
 * accessors decode f32 / f16 / bf16 / bytes from the words.
 *
 * Accessors generated for a logical buffer X (indices count elements of the view, offsets are the
 * view's start in bytes):
 *   X_word(i) -> u32      word i (the view must start on 4 bytes; f32 / u32 / i32 data)
 *   X_f32(i) -> f32       bitcast of X_word(i)
 *   X_byte(i) -> u32      byte i
 *   X_u16(i) -> u32       16-bit element i (the view starts on 2 bytes)
 *   X_f16(i) -> f32, X_bf16(i) -> f32
 *   X_u32at(b) -> u32     the little-endian 32 bits at byte b of the view (any alignment)
 * and, when X is written:
 *   X_setw(i, v: u32), X_setf(i, v: f32)        word i
 *   X_set16(i, v: u32)    16-bit element i (read-modify-write of its word: only safe when no other
 *                         invocation of the dispatch writes the other half)
 * Parameters are fields of the uniform `p` (p.n, p.eps, …), declared `name: u32|i32|f32`.
 * The kernel's code defines `fn run(g: u32, l: u32)`: workgroup g (linear, dispatches over 65,535
 * workgroups are folded into two dimensions) and invocation l inside it.
 */

export interface BufferDecl {
  readonly name: string;
  /** The kernel writes it (the binding becomes read_write). */
  readonly write?: boolean;
}

export interface KernelSource {
  /** Pipeline cache key; kernels with different code need different names. */
  readonly name: string;
  readonly buffers: readonly BufferDecl[];
  /** `name: u32` / `name: i32` / `name: f32`. */
  readonly params: readonly string[];
  readonly workgroupSize: number;
  /** WGSL: helpers, `var<workgroup>` arrays and `fn run(g: u32, l: u32)`. */
  readonly code: string;
}

export type ParamType = 'u32' | 'i32' | 'f32';

export interface ParamField {
  readonly name: string;
  readonly type: ParamType;
}

/** The uniform fields of a kernel: each buffer's byte offset (`X_o`), then its parameters. */
export function paramFields(k: KernelSource): ParamField[] {
  const fields: ParamField[] = k.buffers.map((b) => ({ name: `${b.name}_o`, type: 'u32' as const }));
  for (const p of k.params) {
    const m = /^\s*(\w+)\s*:\s*(u32|i32|f32)\s*$/.exec(p);
    if (!m) throw new Error(`kernel ${k.name}: parameter "${p}" is not "name: u32|i32|f32"`);
    fields.push({ name: m[1], type: m[2] as ParamType });
  }
  return fields;
}

/** Bytes of the uniform block (a multiple of 16). */
export function paramBytes(k: KernelSource): number {
  return Math.max(16, Math.ceil((paramFields(k).length * 4) / 16) * 16);
}

/**
 * The WGSL program for a binding layout: `physical[i]` is the binding slot (0-based) of logical
 * buffer i; a slot is read_write when any buffer in it is written.
 */
export function generateProgram(k: KernelSource, physical: readonly number[]): string {
  const fields = paramFields(k);
  const pad = paramBytes(k) / 4 - fields.length;
  const slots = Math.max(-1, ...physical) + 1;
  const writable = new Array<boolean>(slots).fill(false);
  k.buffers.forEach((b, i) => { if (b.write) writable[physical[i]] = true; });
  const out: string[] = [];
  out.push('struct Params {');
  for (const f of fields) out.push(`  ${f.name}: ${f.type},`);
  for (let i = 0; i < pad; i++) out.push(`  _pad${i}: u32,`);
  out.push('}');
  out.push('@group(0) @binding(0) var<uniform> p: Params;');
  for (let s = 0; s < slots; s++) {
    out.push(`@group(0) @binding(${s + 1}) var<storage, ${writable[s] ? 'read_write' : 'read'}> B${s}: array<u32>;`);
  }
  k.buffers.forEach((b, i) => {
    const B = `B${physical[i]}`, X = b.name, o = `p.${X}_o`;
    out.push(
      `fn ${X}_word(i: u32) -> u32 { return ${B}[(${o} >> 2u) + i]; }`,
      `fn ${X}_f32(i: u32) -> f32 { return bitcast<f32>(${X}_word(i)); }`,
      `fn ${X}_byte(i: u32) -> u32 { let a = ${o} + i; return (${B}[a >> 2u] >> ((a & 3u) << 3u)) & 0xFFu; }`,
      `fn ${X}_u16(i: u32) -> u32 { let a = ${o} + 2u * i; return (${B}[a >> 2u] >> ((a & 2u) << 3u)) & 0xFFFFu; }`,
      `fn ${X}_f16(i: u32) -> f32 { return unpack2x16float(${X}_u16(i)).x; }`,
      `fn ${X}_bf16(i: u32) -> f32 { return bitcast<f32>(${X}_u16(i) << 16u); }`,
      `fn ${X}_u32at(b: u32) -> u32 { let a = ${o} + b; let s = (a & 3u) << 3u; let w0 = ${B}[a >> 2u];`
        + ` if (s == 0u) { return w0; } return (w0 >> s) | (${B}[(a >> 2u) + 1u] << (32u - s)); }`,
    );
    if (b.write) {
      out.push(
        `fn ${X}_setw(i: u32, v: u32) { ${B}[(${o} >> 2u) + i] = v; }`,
        `fn ${X}_setf(i: u32, v: f32) { ${X}_setw(i, bitcast<u32>(v)); }`,
        `fn ${X}_set16(i: u32, v: u32) { let a = ${o} + 2u * i; let s = (a & 2u) << 3u; let w = a >> 2u;`
          + ` ${B}[w] = (${B}[w] & ~(0xFFFFu << s)) | ((v & 0xFFFFu) << s); }`,
      );
    }
  });
  out.push(k.code);
  out.push(
    `@compute @workgroup_size(${k.workgroupSize})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {',
    '  run(wid.x + wid.y * nwg.x, lid);',
    '}',
  );
  return out.join('\n');
}
