// docs/reference.md §3 exit codes.
export const EXIT = { ok: 0, failed: 1, usage: 2, config: 78 } as const;
