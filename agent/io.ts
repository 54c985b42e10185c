// Where a command writes its lines: stdout and stderr, as the entry point gives them (through the scrubber).
export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}
