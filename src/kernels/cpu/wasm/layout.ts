// Memory layout seen from inside the module.
import { scratchBytes, scratchPtr } from './scratch';

// Where this module's own data ends in the shared memory: the allocator starts above it.
// (`--runtime stub` places static data from 1024 up to __heap_base and keeps no stack in memory.)
export function heap_base(): usize { return __heap_base; }

/** Gives this instance (one per thread) its scratch block. */
export function set_scratch(ptr: usize, bytes: usize): void {
  scratchPtr = ptr;
  scratchBytes = bytes;
}
