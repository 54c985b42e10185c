import { describe, expect, it } from "vitest";
import { parseReference, repoDigestName } from "./reference.ts";

const D = "sha256:" + "a".repeat(64);

describe("parseReference", () => {
  it.each([
    ["redis", "docker.io", "library/redis", "latest", undefined, "docker.io/library/redis:latest"],
    ["redis:7", "docker.io", "library/redis", "7", undefined, "docker.io/library/redis:7"],
    ["acme/tool:1", "docker.io", "acme/tool", "1", undefined, "docker.io/acme/tool:1"],
    ["docker.io/redis:7", "docker.io", "library/redis", "7", undefined, "docker.io/library/redis:7"],
    ["index.docker.io/acme/tool:1", "docker.io", "acme/tool", "1", undefined, "docker.io/acme/tool:1"],
    ["registry-1.docker.io/acme/api:1", "docker.io", "acme/api", "1", undefined, "docker.io/acme/api:1"],
    ["ghcr.io/acme/api:1.4.2", "ghcr.io", "acme/api", "1.4.2", undefined, "ghcr.io/acme/api:1.4.2"],
    ["localhost:5000/app", "localhost:5000", "app", "latest", undefined, "localhost:5000/app:latest"],
    ["localhost/app:2", "localhost", "app", "2", undefined, "localhost/app:2"],
    [`123456789012.dkr.ecr.us-east-1.amazonaws.com/worker@${D}`, "123456789012.dkr.ecr.us-east-1.amazonaws.com", "worker", undefined, D, `123456789012.dkr.ecr.us-east-1.amazonaws.com/worker@${D}`],
    [`ghcr.io/acme/api:1@${D}`, "ghcr.io", "acme/api", "1", D, `ghcr.io/acme/api:1@${D}`],
    ["GHCR.IO/acme/api:1", "ghcr.io", "acme/api", "1", undefined, "ghcr.io/acme/api:1"],
    ["europe-west1-docker.pkg.dev/proj/repo/img:v1", "europe-west1-docker.pkg.dev", "proj/repo/img", "v1", undefined, "europe-west1-docker.pkg.dev/proj/repo/img:v1"],
    ["a__b/c-d.e:T_1", "docker.io", "a__b/c-d.e", "T_1", undefined, "docker.io/a__b/c-d.e:T_1"],
  ])("%s", (input, registry, path, tag, digest, canonical) => {
    const r = parseReference(input);
    expect(r.registry).toBe(registry);
    expect(r.path).toBe(path);
    expect(r.tag).toBe(tag);
    expect(r.digest).toBe(digest);
    expect(r.canonical).toBe(canonical);
  });

  it.each([
    [""],
    ["Redis:7"],
    ["acme/Tool"],
    ["ghcr.io/acme/api:"],
    ["ghcr.io/acme/api:-bad"],
    ["ghcr.io/acme/api@sha256:abc"],
    ["ghcr.io/acme/api@md5:" + "a".repeat(32)],
    ["ghcr.io//api"],
    ["ghcr.io/acme/api:1 "],
    ["https://ghcr.io/acme/api:1"],
    ["ghcr.io/acme/-api"],
    ["ghcr.io/" + "a".repeat(260)],
  ])("refuses %j", (input) => {
    expect(() => parseReference(input)).toThrow();
  });

  it("reads the repository out of RepoDigests entries in Docker's short form", () => {
    expect(repoDigestName(`redis@${D}`)).toBe("docker.io/library/redis");
    expect(repoDigestName(`acme/tool@${D}`)).toBe("docker.io/acme/tool");
    expect(repoDigestName(`ghcr.io/acme/api@${D}`)).toBe("ghcr.io/acme/api");
    expect(repoDigestName("nonsense")).toBeUndefined();
  });
});

describe("image references on every supported registry", () => {
  it.each([
    ["redis:7", "docker.io", "library/redis"],
    ["acme/tool:1", "docker.io", "acme/tool"],
    ["registry-1.docker.io/acme/api:1", "docker.io", "acme/api"],
    ["ghcr.io/acme/api:1.4.2", "ghcr.io", "acme/api"],
    ["gcr.io/acme-project/app:v1", "gcr.io", "acme-project/app"],
    ["us.gcr.io/acme-project/app:v1", "us.gcr.io", "acme-project/app"],
    ["europe-west1-docker.pkg.dev/acme-project/containers/app:v1", "europe-west1-docker.pkg.dev", "acme-project/containers/app"],
    ["quay.io/acmecorp/app:2", "quay.io", "acmecorp/app"],
    ["registry.digitalocean.com/acme/app:3", "registry.digitalocean.com", "acme/app"],
    ["acme.azurecr.io/app/api:4", "acme.azurecr.io", "app/api"],
    ["registry.gitlab.com/acme/project/app:5", "registry.gitlab.com", "acme/project/app"],
  ])("%s → %s / %s", (input, registry, path) => {
    const r = parseReference(input);
    expect(r.registry).toBe(registry);
    expect(r.path).toBe(path);
  });
});
