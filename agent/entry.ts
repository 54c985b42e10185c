// The executable's entry: turn on Node's module compile cache before anything
// else is loaded (start-up is most of a warm bake's time), then run main.
import module from "node:module";

module.enableCompileCache?.();
await import("./main.ts");
