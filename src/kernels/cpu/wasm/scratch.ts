// Per-instance scratch: each thread's instance gets its own block of the shared memory, set once
// after instantiation (the globals are the instance's own, not in shared memory). Kernels use it
// for per-call staging, e.g. a rescaled copy of x, and fall back to a slower path when it is small.
export let scratchPtr: usize = 0;
export let scratchBytes: usize = 0;
