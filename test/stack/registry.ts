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
  /** Default 80; Docker Hub is served on 443 with TLS. */
  port?: number;
  /** Basic auth: user → password (htpasswd). */
  users?: Record<string, string>;
  /** Bearer-token auth (distribution's `auth: token`), the way most public registries work. */
  token?: { realm: string; service: string; issuer: string; rootCertPem: string };
  tls?: { certPem: string; keyPem: string };
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
  const port = opts.port ?? 80;
  const files: { content: string; target: string }[] = [];
  let auth = "";
  if (opts.token) {
    auth = [
      "auth:",
      "  token:",
      `    realm: ${opts.token.realm}`,
      `    service: ${opts.token.service}`,
      `    issuer: ${opts.token.issuer}`,
      "    rootcertbundle: /etc/registry/token-signers.pem",
      "",
    ].join("\n");
    files.push({ content: opts.token.rootCertPem, target: "/etc/registry/token-signers.pem" });
  } else if (Object.keys(users).length) {
    auth = `auth:\n  htpasswd:\n    realm: ${opts.name}\n    path: /etc/registry/htpasswd\n`;
    const lines = Object.entries(users).map(([u, p]) => htpasswdLine(u, p));
    files.push({ content: lines.join("\n") + "\n", target: "/etc/registry/htpasswd" });
  }
  const tls = opts.tls ? ["  tls:", "    certificate: /etc/registry/tls.pem", "    key: /etc/registry/tls.key"] : [];
  if (opts.tls) {
    files.push({ content: opts.tls.certPem, target: "/etc/registry/tls.pem" }, { content: opts.tls.keyPem, target: "/etc/registry/tls.key" });
  }
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
    `  addr: ${opts.address}:${port}`,
    ...tls,
    auth,
  ].join("\n");
  files.unshift({ content: config, target: "/etc/registry/config.yml" });
  const container = await new GenericContainer(REGISTRY_IMAGE)
    .withNetworkMode("host")
    .withCopyContentToContainer(files)
    .withCommand(["serve", "/etc/registry/config.yml"])
    .withLabels({ "slothbox.test": "registry" })
    .withWaitStrategy(Wait.forLogMessage(/listening on/))
    .withStartupTimeout(30_000)
    .start();
  const scheme = opts.tls ? "https" : "http";
  const url = `${scheme}://${opts.address}${port === (opts.tls ? 443 : 80) ? "" : `:${port}`}`;
  return { name: opts.name, address: opts.address, url, users, container };
}
