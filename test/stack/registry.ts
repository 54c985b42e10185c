// Real registries (Debian's docker-registry, distribution 2.8) started with
// testcontainers from a locally built FROM-scratch image, in host network mode,
// each bound to its own loopback address on port 80.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { GenericContainer, Wait, type StartedTestContainer } from "testcontainers";

export const REGISTRY_IMAGE = "slothbox-test/registry:2.8";

/** Builds the registry image from the machine's own binary and its two libraries. */
export async function buildRegistryImage(workDir: string): Promise<void> {
  const ctx = path.join(workDir, "registry-image");
  for (const f of ["usr/bin/docker-registry", "lib/x86_64-linux-gnu/libc.so.6", "lib64/ld-linux-x86-64.so.2"]) {
    mkdirSync(path.dirname(path.join(ctx, f)), { recursive: true });
    copyFileSync(`/${f}`, path.join(ctx, f));
  }
  writeFileSync(
    path.join(ctx, "Dockerfile"),
    [
      "FROM scratch",
      "COPY lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libc.so.6",
      "COPY lib64/ld-linux-x86-64.so.2 /lib64/ld-linux-x86-64.so.2",
      "COPY usr/bin/docker-registry /docker-registry",
      'ENTRYPOINT ["/docker-registry"]',
      "",
    ].join("\n"),
  );
  await GenericContainer.fromDockerfile(ctx).build(REGISTRY_IMAGE, { deleteOnExit: false });
}

/** bcrypt htpasswd line; the password goes through stdin, never argv. */
export function htpasswdLine(user: string, password: string): string {
  return execFileSync("htpasswd", ["-iBn", user], { input: password }).toString().trim();
}

export interface RegistryOptions {
  name: string;
  address: string;
  /** user → password; none means anonymous pulls and pushes. */
  users?: Record<string, string>;
}

export interface Registry {
  name: string;
  address: string;
  url: string;
  users: Record<string, string>;
  container: StartedTestContainer;
}

export async function startRegistry(opts: RegistryOptions): Promise<Registry> {
  const users = opts.users ?? {};
  const auth = Object.keys(users).length
    ? `auth:\n  htpasswd:\n    realm: ${opts.name}\n    path: /etc/registry/htpasswd\n`
    : "";
  const config = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    "    rootdirectory: /var/lib/registry",
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${opts.address}:80`,
    auth,
  ].join("\n");
  const files = [{ content: config, target: "/etc/registry/config.yml" }];
  if (Object.keys(users).length) {
    const lines = Object.entries(users).map(([u, p]) => htpasswdLine(u, p));
    files.push({ content: lines.join("\n") + "\n", target: "/etc/registry/htpasswd" });
  }
  const container = await new GenericContainer(REGISTRY_IMAGE)
    .withNetworkMode("host")
    .withCopyContentToContainer(files)
    .withCommand(["serve", "/etc/registry/config.yml"])
    .withLabels({ "slothbox.test": "registry" })
    .withWaitStrategy(Wait.forLogMessage(/listening on/))
    .withStartupTimeout(30_000)
    .start();
  return { name: opts.name, address: opts.address, url: `http://${opts.address}`, users, container };
}
