/**
 * The part of the WebAssembly JS API the CPU backend uses. TypeScript declares it only in its DOM
 * and WebWorker libraries, which this Node project does not load; delete this file if the
 * tsconfig ever adds one of them.
 */
declare namespace WebAssembly {
  type ExportValue = Function | Global | Memory | Table;
  type Exports = Record<string, ExportValue>;
  type ImportValue = ExportValue | number;
  type Imports = Record<string, Record<string, ImportValue>>;
  interface MemoryDescriptor { initial: number; maximum?: number; shared?: boolean }
  interface ModuleExportDescriptor { kind: string; name: string }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
    static exports(module: Module): ModuleExportDescriptor[];
  }
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Exports;
  }
  class Global { value: unknown }
  function validate(bytes: ArrayBufferView | ArrayBuffer): boolean;
  class Table { readonly length: number }
}
