// The tables below are ported from github.com/distribution/reference, the
// versions stored as reference_test.go@ff14fafe2236e51c2894ac07d4bdfc778e96d682,
// normalize_test.go@4894124079e525c3c3c5c8aacaa653b5499004e9,
// regexp_test.go@00a09fa3799203fc887e667b0d82142ee831939a and
// fuzz_test.go@0c5e42c50c5503a4a5b503f85e15e625d6aedf51 (the grammar they
// test: regexp.go@00a09fa3, reference.go@0965666a, normalize.go@aeed5e66).
//
// Upstream runs most of them through Parse, which leaves familiar names as
// written ("test_com"), or through bare regular expressions; parseReference
// is ParseNormalizedNamed (with ParseAnyReference's digest check and
// TagNameOnly's `:latest`), so those rows carry the normalised result that
// ParseNormalizedNamed gives, with upstream's own result in a comment where
// it differs. Valid or not is upstream's verdict in every row but the few
// marked PRODUCT, where the agent differs on purpose (see reference.ts).
import { describe, expect, it } from "vitest";
import { parseReference, ImageReferenceError, repoDigestName } from "./reference.ts";
import { normalizeRegistry } from "./registry.ts";

const D = "sha256:" + "a".repeat(64);
const F64 = "sha256:" + "f".repeat(64);
const F128 = "sha512:" + "f".repeat(128);
const BE = "sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912";
const DBCC_HEX = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
const DBCC = `sha256:${DBCC_HEX}`;
const E669 = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";

function refusal(input: string): ImageReferenceError {
  try {
    parseReference(input);
  } catch (err) {
    if (err instanceof ImageReferenceError) return err;
    throw err;
  }
  throw new Error(`${JSON.stringify(input)} was accepted`);
}

/** Checks every field against the expected name (host/path), tag and digest, and that the canonical form parses to itself. */
function expectReference(input: string, name: string, tag?: string, digest?: string): void {
  const r = parseReference(input);
  const host = name.slice(0, name.indexOf("/"));
  const expectedTag = tag ?? (digest === undefined ? "latest" : undefined);
  expect(r.name).toBe(name);
  expect(r.registry).toBe(normalizeRegistry(host));
  expect(r.path).toBe(name.slice(host.length + 1));
  expect(r.tag).toBe(expectedTag);
  expect(r.digest).toBe(digest);
  expect(r.canonical).toBe(name + (expectedTag !== undefined ? `:${expectedTag}` : "") + (digest !== undefined ? `@${digest}` : ""));
  expect(parseReference(r.canonical).canonical).toBe(r.canonical);
}

/** `canonical` is the expected canonical form, or null for a reference upstream refuses. */
function expectCanonical(input: string, canonical: string | null): void {
  if (canonical === null) refusal(input);
  else expect(parseReference(input).canonical).toBe(canonical);
}

describe("ImageReferenceError", () => {
  it("names itself, so that a log line or a stack says which refusal it is", () => {
    expect(refusal("").name).toBe("ImageReferenceError");
  });
});

describe("reference_test.go TestReferenceParse", () => {
  it.each<[string, string, string?, string?]>([
    ["test_com", "docker.io/library/test_com"], // Parse: repository "test_com", no domain
    ["test.com:tag", "docker.io/library/test.com", "tag"], // Parse: "test.com", no domain
    ["test.com:5000", "docker.io/library/test.com", "5000"], // Parse: "test.com", no domain
    ["test.com/repo:tag", "test.com/repo", "tag"],
    ["test:5000/repo", "test:5000/repo"],
    ["test:5000/repo:tag", "test:5000/repo", "tag"],
    [`test:5000/repo@${F64}`, "test:5000/repo", undefined, F64],
    [`test:5000/repo:tag@${F64}`, "test:5000/repo", "tag", F64],
    ["test:5000/repo", "test:5000/repo"], // upstream lists it twice
    ["lowercase:Uppercase", "docker.io/library/lowercase", "Uppercase"], // Parse: "lowercase"
    // Parse: domain "a"; normalised, "a" is a Docker Hub namespace and the 255-character path is just within the limit.
    [`${"a/".repeat(127)}a:tag-puts-this-over-max`, `docker.io/${"a/".repeat(127)}a`, "tag-puts-this-over-max"],
    ["sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com/bar/baz/quux"],
    ["sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux", "some-long-tag"],
    ["b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app", "test.example.com"],
    ["xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage", "xn--n3h.com"],
    [`xn--7o8h.com/myimage:xn--7o8h.com@${F128}`, "xn--7o8h.com/myimage", "xn--7o8h.com", F128],
    ["foo_bar.com:8080", "docker.io/library/foo_bar.com", "8080"], // Parse: "foo_bar.com"
    ["foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com", "8080"], // Parse: domain "foo"
    ["192.168.1.1", "docker.io/library/192.168.1.1"], // Parse: "192.168.1.1"
    ["192.168.1.1:tag", "docker.io/library/192.168.1.1", "tag"], // Parse: "192.168.1.1"
    ["192.168.1.1:5000", "docker.io/library/192.168.1.1", "5000"], // Parse: "192.168.1.1"
    ["192.168.1.1/repo", "192.168.1.1/repo"],
    ["192.168.1.1:5000/repo", "192.168.1.1:5000/repo"],
    ["192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo", "5050"],
    ["[2001:db8::1]/repo", "[2001:db8::1]/repo"],
    ["[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]/repo", "tag"],
    ["[2001:db8::1]:5000/repo", "[2001:db8::1]:5000/repo"],
    ["[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo", "tag"],
    [`[2001:db8::1]:5000/repo@${F64}`, "[2001:db8::1]:5000/repo", undefined, F64],
    [`[2001:db8::1]:5000/repo:tag@${F64}`, "[2001:db8::1]:5000/repo", "tag", F64],
    ["[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo"],
    ["[::1]:5000/repo", "[::1]:5000/repo"],
    [`example.com/${"a".repeat(255)}:tag`, `example.com/${"a".repeat(255)}`, "tag"],
    // Commented out upstream (FIXME: "Uppercase" is taken for a domain, so it passes); ParseNormalizedNamed takes it for one too.
    ["Uppercase/lowercase:tag", "Uppercase/lowercase", "tag"],
  ])("%s", expectReference);

  it.each<[string, RegExp]>([
    ["", /invalid reference format/], // Parse: ErrNameEmpty; ParseNormalizedNamed: invalid format
    [":justtag", /invalid reference format/],
    [`@${F64}`, /invalid reference format/],
    ["repo@sha256:" + "f".repeat(34), /invalid checksum digest format/], // go-digest's ErrDigestInvalidLength is its format error
    ["validname@invaliddigest:" + "f".repeat(64), /unsupported digest algorithm/],
    ["Uppercase:tag", /must be lowercase/],
    ["test:5000/Uppercase/lowercase:tag", /must be lowercase/],
    [`domain/${"a".repeat(256)}:tag`, /must not be more than 255 characters/],
    ["aa/asdf$$^/aa", /invalid reference format/],
    ["[2001:db8::1]", /invalid reference format/],
    ["[2001:db8::1]:5000", /invalid reference format/],
    ["[2001:db8::1]:tag", /invalid reference format/],
    ["[fe80::1%eth0]:5000/repo", /invalid reference format/],
    ["[fe80::1%@invalidzone]:5000/repo", /invalid reference format/],
  ])("refuses %j", (input, why) => {
    expect(refusal(input).message).toMatch(why);
  });
});

describe("reference_test.go, the other name tables", () => {
  it.each<[string, string | null]>([
    // TestWithNameFailure: a name cannot take a tag, a reference can.
    ["", null],
    [":justtag", null],
    [`@${F64}`, null],
    ["validname@invaliddigest:" + "f".repeat(64), null],
    ["example.com/repo:tag", "example.com/repo:tag"],
    [`example.com/${"a".repeat(256)}`, null],
    ["aa/asdf$$^/aa", null],
    // TestDomainAndPath (WithName leaves "test_com" without a domain).
    ["test.com/foo", "test.com/foo:latest"],
    ["test_com/foo", "docker.io/test_com/foo:latest"],
    ["test:8080/foo", "test:8080/foo:latest"],
    ["test.com:8080/foo", "test.com:8080/foo:latest"],
    ["test-com:8080/foo", "test-com:8080/foo:latest"],
    ["xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest"],
    // TestSerialization
    ["", null],
    ["example.com:8000/named", "example.com:8000/named:latest"],
    ["example.com:8000/named:tagged", "example.com:8000/named:tagged"],
    [
      "other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112",
      "other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112",
    ],
  ])("%s → %s", expectCanonical);

  // TestParseNamed: ParseNamed accepts exactly the names ParseNormalizedNamed leaves as written.
  it.each<[string, boolean]>([
    ["test.com/foo", true],
    ["test:8080/foo", true],
    ["test_com/foo", false],
    ["test.com", false],
    ["foo", false],
    ["library/foo", false],
    ["docker.io/library/foo", true],
    ["docker.io/foo", false],
  ])("%s is already canonical: %s", (input, canonical) => {
    expect(parseReference(input).name === input).toBe(canonical);
  });
});

describe("normalize_test.go", () => {
  it.each([
    // TestValidateReferenceName
    "docker/docker",
    "library/debian",
    "debian",
    "docker.io/docker/docker",
    "docker.io/library/debian",
    "docker.io/debian",
    "index.docker.io/docker/docker",
    "index.docker.io/library/debian",
    "index.docker.io/debian",
    "127.0.0.1:5000/docker/docker",
    "127.0.0.1:5000/library/debian",
    "127.0.0.1:5000/debian",
    "192.168.0.1",
    "192.168.0.1:80",
    "192.168.0.1:8/debian",
    "192.168.0.2:25000/debian",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    "[fc00::1]:5000/docker",
    "[fc00::1]:5000/docker/docker",
    "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    "Docker/docker",
    "DOCKER/docker",
    // TestValidateRemoteName
    "docker/docker",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    "docker-rules/docker",
    "docker---rules/docker",
    "doc/docker",
    "d/docker",
    "jess/t",
    "dock__er/docker",
  ])("accepts %s", (input) => {
    expect(() => parseReference(input)).not.toThrow();
  });

  it.each([
    // TestValidateReferenceName
    "https://github.com/docker/docker",
    "docker/Docker",
    "-docker",
    "-docker/docker",
    "-docker.io/docker/docker",
    "docker///docker",
    "docker.io/docker/Docker",
    "docker.io/docker///docker",
    "[fc00::1]",
    "[fc00::1]:5000",
    "fc00::1:5000/debian",
    "[fe80::1%eth0]:5000/debian",
    "[2001:db8:3:4::192.0.2.33]:5000/debian",
    "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    // TestValidateRemoteName
    "docker/Docker",
    "docker///docker",
    "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    "-docker/docker",
    "docker-/docker",
    "-docker-/docker",
    "____/____",
    "_docker/_docker",
    "dock..er/docker",
    "dock_.er/docker",
    "dock-.er/docker",
    "docker/",
    "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker",
    // TestInvalidReferenceComponents
    "-foo",
  ])("refuses %s", (input) => {
    refusal(input);
  });

  it("refuses a 64-hex name with upstream's reason", () => {
    expect(refusal("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a").message).toMatch(/cannot specify 64-byte hexadecimal strings/);
  });

  // TestParseRepositoryInfo: every spelling of a repository gives the same full name, domain and path.
  // (FamiliarName is Docker's display form, which the agent does not produce.)
  it.each<{ remote: string; full: string; domain: string; refs: string[] }>([
    { remote: "fooo/bar", full: "docker.io/fooo/bar", domain: "docker.io", refs: ["fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar"] },
    { remote: "library/ubuntu", full: "docker.io/library/ubuntu", domain: "docker.io", refs: ["ubuntu", "docker.io/library/ubuntu", "library/ubuntu"] },
    { remote: "nonlibrary/ubuntu", full: "docker.io/nonlibrary/ubuntu", domain: "docker.io", refs: ["nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu"] },
    { remote: "other/library", full: "docker.io/other/library", domain: "docker.io", refs: ["other/library", "docker.io/other/library"] },
    { remote: "private/moonbase", full: "127.0.0.1:8000/private/moonbase", domain: "127.0.0.1:8000", refs: ["127.0.0.1:8000/private/moonbase"] },
    { remote: "privatebase", full: "127.0.0.1:8000/privatebase", domain: "127.0.0.1:8000", refs: ["127.0.0.1:8000/privatebase"] },
    { remote: "private/moonbase", full: "example.com/private/moonbase", domain: "example.com", refs: ["example.com/private/moonbase"] },
    { remote: "privatebase", full: "example.com/privatebase", domain: "example.com", refs: ["example.com/privatebase"] },
    { remote: "private/moonbase", full: "example.com:8000/private/moonbase", domain: "example.com:8000", refs: ["example.com:8000/private/moonbase"] },
    { remote: "privatebasee", full: "example.com:8000/privatebasee", domain: "example.com:8000", refs: ["example.com:8000/privatebasee"] },
    {
      remote: "library/ubuntu-12.04-base",
      full: "docker.io/library/ubuntu-12.04-base",
      domain: "docker.io",
      refs: ["ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base", "index.docker.io/library/ubuntu-12.04-base"],
    },
    { remote: "library/foo", full: "docker.io/library/foo", domain: "docker.io", refs: ["foo", "docker.io/library/foo", "docker.io/foo"] },
    { remote: "library/foo/bar", full: "docker.io/library/foo/bar", domain: "docker.io", refs: ["library/foo/bar", "docker.io/library/foo/bar"] },
    { remote: "store/foo/bar", full: "docker.io/store/foo/bar", domain: "docker.io", refs: ["store/foo/bar", "docker.io/store/foo/bar"] },
    // An upper-case first component is a registry host: Docker keeps it as written, the agent's registry identity is lower-case.
    { remote: "bar", full: "Foo/bar", domain: "Foo", refs: ["Foo/bar"] },
    { remote: "bar", full: "FOO/bar", domain: "FOO", refs: ["FOO/bar"] },
  ])("$full", ({ remote, full, domain, refs }) => {
    for (const input of refs) {
      const r = parseReference(input);
      expect(r.name).toBe(full);
      expect(r.path).toBe(remote);
      expect(r.registry).toBe(domain.toLowerCase());
    }
  });

  it("TestParseReferenceWithTagAndDigest: keeps the tag and the digest", () => {
    const short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
    const r = parseReference(short);
    expect(r.canonical).toBe(`docker.io/library/${short}`);
    expect(r.tag).toBe("latest");
    expect(r.digest).toBe("sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa");
  });

  // TestParseAnyReference: the names come out as upstream's (with `:latest` where there is neither tag nor digest);
  // the two that upstream parses as a bare digest name no repository, so the agent refuses them.
  it.each<[string, string | null]>([
    ["redis", "docker.io/library/redis:latest"],
    ["redis:latest", "docker.io/library/redis:latest"],
    ["docker.io/library/redis:latest", "docker.io/library/redis:latest"],
    [`redis@${DBCC}`, `docker.io/library/redis@${DBCC}`],
    [`docker.io/library/redis@${DBCC}`, `docker.io/library/redis@${DBCC}`],
    ["dmcgowan/myapp", "docker.io/dmcgowan/myapp:latest"],
    ["dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest"],
    ["docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest"],
    [`dmcgowan/myapp@${DBCC}`, `docker.io/dmcgowan/myapp@${DBCC}`],
    [`docker.io/dmcgowan/myapp@${DBCC}`, `docker.io/dmcgowan/myapp@${DBCC}`],
    [DBCC_HEX, null],
    [DBCC, null],
    [DBCC_HEX.slice(0, 63), `docker.io/library/${DBCC_HEX.slice(0, 63)}:latest`],
    ["dbcc1", "docker.io/library/dbcc1:latest"],
  ])("%s → %s", expectCanonical);

  it("says why a bare digest is refused", () => {
    expect(refusal(DBCC).message).toMatch(/has no name/);
    expect(refusal(F128).message).toMatch(/has no name/);
  });

  it.each<[string, string, string]>([
    // TestNormalizedSplitHostname
    ["test.com/foo", "test.com", "foo"],
    ["test_com/foo", "docker.io", "test_com/foo"],
    ["docker/migrator", "docker.io", "docker/migrator"],
    ["test.com:8080/foo", "test.com:8080", "foo"],
    ["test-com:8080/foo", "test-com:8080", "foo"],
    ["foo", "docker.io", "library/foo"],
    ["xn--n3h.com/foo", "xn--n3h.com", "foo"],
    ["xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"],
    ["docker.io/foo", "docker.io", "library/foo"],
    ["docker.io/library/foo", "docker.io", "library/foo"],
    ["docker.io/library/foo/bar", "docker.io", "library/foo/bar"],
  ])("%s → %s / %s", (input, registry, path) => {
    const r = parseReference(input);
    expect(r.registry).toBe(registry);
    expect(r.path).toBe(path);
  });

  it.each<[string, string]>([
    // TestParseDockerRef
    ["busybox", "docker.io/library/busybox:latest"],
    ["busybox:latest", "docker.io/library/busybox:latest"],
    [`busybox@${E669}`, `docker.io/library/busybox@${E669}`],
    ["library/busybox", "docker.io/library/busybox:latest"],
    ["docker.io/busybox", "docker.io/library/busybox:latest"],
    ["docker.io/library/busybox", "docker.io/library/busybox:latest"],
    ["docker.io/busybox:latest", "docker.io/library/busybox:latest"],
    ["library/busybox:latest", "docker.io/library/busybox:latest"],
    ["docker.io/library/busybox:latest", "docker.io/library/busybox:latest"],
    ["gcr.io/library/busybox", "gcr.io/library/busybox:latest"],
    // PRODUCT: ParseDockerRef drops the tag ("gcr.io/library/busybox@sha256:…"); the agent keeps both and pulls by the digest.
    [`gcr.io/library/busybox:latest@${E669}`, `gcr.io/library/busybox:latest@${E669}`],
  ])("%s → %s", (input, canonical) => {
    expect(parseReference(input).canonical).toBe(canonical);
  });
});

describe("regexp_test.go, as full references", () => {
  // TestDomainRegexp: each host in front of a repository (the host side of hostProblem is in registry.test.ts).
  it.each<[string, boolean]>([
    ["test.com", true],
    ["test.com:10304", true],
    ["test.com:http", false],
    ["localhost", true],
    ["localhost:8080", true],
    ["a", true], // no "." or ":": a Docker Hub namespace, not a host, in a full reference
    ["a.b", true],
    ["ab.cd.com", true],
    ["a-b.com", true],
    ["-ab.com", false],
    ["ab-.com", false],
    ["ab.c-om", true],
    ["ab.-com", false],
    ["ab.com-", false],
    ["0101.com", true],
    ["001a.com", true],
    ["b.gbc.io:443", true],
    ["b.gbc.io", true],
    ["xn--n3h.com", true],
    ["Asdf.com", true],
    ["192.168.1.1:75050", true],
    ["192.168.1.1:750050", true],
    ["[fd00:1:2::3]:75050", true],
    ["[fd00:1:2::3]75050", false],
    ["[fd00:1:2::3]::75050", false],
    ["[fd00:1:2::3%eth0]:75050", false],
    ["[fd00123123123]:75050", true],
    ["[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050", true],
    ["[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505", true],
    ["fd00:1:2::3:75050", false],
  ])("%s/repo valid: %s", (host, valid) => {
    if (valid) expectReference(`${host}/repo`, host === "a" ? "docker.io/a/repo" : `${host}/repo`);
    else refusal(`${host}/repo`);
  });

  // TestFullNameRegexp: upstream's domain/path split is for the bare name pattern; normalised, a first
  // component that is not a host (no ".", ":" or upper case, not localhost) is a Docker Hub namespace.
  it.each<[string, string | null]>([
    ["", null],
    ["short", "docker.io/library/short:latest"],
    ["simple/name", "docker.io/simple/name:latest"],
    ["library/ubuntu", "docker.io/library/ubuntu:latest"],
    ["docker/stevvooe/app", "docker.io/docker/stevvooe/app:latest"],
    ["aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb", "docker.io/aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb:latest"],
    ["aa/aa/bb/bb/bb", "docker.io/aa/aa/bb/bb/bb:latest"],
    ["a/a/a/a", "docker.io/a/a/a/a:latest"],
    ["a/a/a/a/", null],
    ["a//a/a", null],
    ["a", "docker.io/library/a:latest"],
    ["a/aa", "docker.io/a/aa:latest"],
    ["a/aa/a", "docker.io/a/aa/a:latest"],
    ["foo.com", "docker.io/library/foo.com:latest"],
    ["foo.com/", null],
    ["foo.com:8080/bar", "foo.com:8080/bar:latest"],
    ["foo.com:http/bar", null],
    ["foo.com/bar", "foo.com/bar:latest"],
    ["foo.com/bar/baz", "foo.com/bar/baz:latest"],
    ["localhost:8080/bar", "localhost:8080/bar:latest"],
    ["sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com/bar/baz/quux:latest"],
    ["blog.foo.com/bar/baz", "blog.foo.com/bar/baz:latest"],
    ["a^a", null],
    ["aa/asdf$$^/aa", null],
    ["asdf$$^/aa", null],
    ["aa-a/a", "docker.io/aa-a/a:latest"],
    // The pattern matches (domain "a"); normalised, the Docker Hub path is 257 characters, over the 255 limit.
    [`${"a/".repeat(128)}a`, null],
    ["a-/a/a/a", null],
    ["foo.com/a-/a/a", null],
    ["-foo/bar", null],
    ["foo/bar-", null],
    ["foo-/bar", null],
    ["foo/-bar", null],
    ["_foo/bar", null],
    ["foo_bar", "docker.io/library/foo_bar:latest"],
    ["foo_bar.com", "docker.io/library/foo_bar.com:latest"],
    // Not a name, but a valid reference: name "foo_bar.com", tag "8080" (as TestReferenceParse has it).
    ["foo_bar.com:8080", "docker.io/library/foo_bar.com:8080"],
    ["foo_bar.com:8080/app", null],
    ["foo.com/foo_bar", "foo.com/foo_bar:latest"],
    ["____/____", null],
    ["_docker/_docker", null],
    ["docker_/docker_", null],
    ["b.gcr.io/test.example.com/my-app", "b.gcr.io/test.example.com/my-app:latest"],
    ["xn--n3h.com/myimage", "xn--n3h.com/myimage:latest"],
    ["xn--7o8h.com/myimage", "xn--7o8h.com/myimage:latest"],
    ["example.com/xn--7o8h.com/myimage", "example.com/xn--7o8h.com/myimage:latest"],
    ["example.com/some_separator__underscore/myimage", "example.com/some_separator__underscore/myimage:latest"],
    ["example.com/__underscore/myimage", null],
    ["example.com/..dots/myimage", null],
    ["example.com/.dots/myimage", null],
    ["example.com/nodouble..dots/myimage", null],
    ["example.com/nodouble..dots/myimage", null], // upstream lists it twice
    ["docker./docker", null],
    [".docker/docker", null],
    ["docker-/docker", null],
    ["-docker/docker", null],
    ["do..cker/docker", null],
    ["do__cker:8080/docker", null],
    ["do__cker/docker", "docker.io/do__cker/docker:latest"],
    ["b.gcr.io/test.example.com/my-app", "b.gcr.io/test.example.com/my-app:latest"], // upstream lists it twice
    ["registry.io/foo/project--id.module--name.ver---sion--name", "registry.io/foo/project--id.module--name.ver---sion--name:latest"],
    ["Asdf.com/foo/bar", "Asdf.com/foo/bar:latest"],
    ["Foo/FarB", null],
  ])("%s → %s", expectCanonical);

  it.each<[string, string | null]>([
    // TestReferenceRegexp
    ["registry.com:8080/myapp:tag", "registry.com:8080/myapp:tag"],
    [`registry.com:8080/myapp@${BE}`, `registry.com:8080/myapp@${BE}`],
    [`registry.com:8080/myapp:tag2@${BE}`, `registry.com:8080/myapp:tag2@${BE}`],
    ["registry.com:8080/myapp@sha256:badbadbadbad", null],
    ["registry.com:8080/myapp:invalid~tag", null],
    ["bad_hostname.com:8080/myapp:tag", null],
    [`localhost:8080@${BE}`, `docker.io/library/localhost:8080@${BE}`], // "localhost" is the name and 8080 its tag
    [`localhost:8080/name@${BE}`, `localhost:8080/name@${BE}`],
    [`localhost:http/name@${BE}`, null],
    [`localhost@${BE}`, `docker.io/library/localhost@${BE}`],
    ["registry.com:8080/myapp@bad", null],
    ["registry.com:8080/myapp@2bad", null],
    // TestIdentifierRegexp: a 64-hex identifier is refused as a name; the rest are names or, with an algorithm, a bare digest.
    ["da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821", null],
    ["7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C", null],
    ["da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf", "docker.io/library/da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf:latest"],
    ["sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821", null],
    ["da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482", "docker.io/library/da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482:latest"],
  ])("%s → %s", expectCanonical);
});

describe("fuzz_test.go FuzzParseNormalizedNamed", () => {
  it("refuses with a ImageReferenceError or accepts a reference whose canonical form parses to itself, quickly", () => {
    const alphabet = ["a", "Z", "0", ".", "-", "_", "__", ":", "/", "@", "[", "]", "%", " ", "sha256:", "f".repeat(32), "localhost", "docker.io"];
    let seed = 1;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const started = performance.now();
    for (let i = 0; i < 5000; i++) {
      const unit = Array.from({ length: 1 + next(5) }, () => alphabet[next(alphabet.length)]).join("");
      const input = unit.repeat(1 + next(i % 10 === 0 ? 500 : 4));
      let r;
      try {
        r = parseReference(input);
      } catch (err) {
        expect(err).toBeInstanceOf(ImageReferenceError);
        continue;
      }
      expect(parseReference(r.canonical).canonical).toBe(r.canonical);
    }
    // Backtracking must stay far from Go's linear-time RE2 worst cases on long inputs.
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe("where the agent differs from upstream (PRODUCT)", () => {
  it.each<[string, string]>([
    // Upstream keeps registry-1.docker.io as a registry of its own; dockerd never treats it as Docker Hub.
    ["registry-1.docker.io/acme/api:1", "docker.io/acme/api"],
    ["registry-1.docker.io/redis", "docker.io/library/redis"],
    // Upstream matches docker.io and index.docker.io case-sensitively; host names are not.
    ["Docker.IO/redis:7", "docker.io/library/redis"],
    ["INDEX.DOCKER.IO/acme/tool", "docker.io/acme/tool"],
  ])("%s is Docker Hub's %s", (input, name) => {
    const r = parseReference(input);
    expect(r.registry).toBe("docker.io");
    expect(r.name).toBe(name);
  });

  it("refuses a name whose host-like first component is no valid host (upstream would read it as a path with no registry)", () => {
    expect(refusal("foo_bar.com/app").message).toMatch(/"foo_bar\.com" is taken for a registry host/);
    expect(refusal("a__b.example/app:1").message).toMatch(/registry host/);
  });
});

describe("parseReference", () => {
  it.each<[string, string, string, string | undefined, string | undefined, string]>([
    ["redis", "docker.io", "library/redis", "latest", undefined, "docker.io/library/redis:latest"],
    ["redis:7", "docker.io", "library/redis", "7", undefined, "docker.io/library/redis:7"],
    ["acme/tool:1", "docker.io", "acme/tool", "1", undefined, "docker.io/acme/tool:1"],
    ["docker.io/redis:7", "docker.io", "library/redis", "7", undefined, "docker.io/library/redis:7"],
    ["index.docker.io/acme/tool:1", "docker.io", "acme/tool", "1", undefined, "docker.io/acme/tool:1"],
    ["registry-1.docker.io/acme/api:1", "docker.io", "acme/api", "1", undefined, "docker.io/acme/api:1"],
    ["ghcr.io/acme/api:1.4.2", "ghcr.io", "acme/api", "1.4.2", undefined, "ghcr.io/acme/api:1.4.2"],
    ["localhost:5000/app", "localhost:5000", "app", "latest", undefined, "localhost:5000/app:latest"],
    ["localhost/app:2", "localhost", "app", "2", undefined, "localhost/app:2"],
    ["[::1]:5000/repo", "[::1]:5000", "repo", "latest", undefined, "[::1]:5000/repo:latest"],
    [`123456789012.dkr.ecr.us-east-1.amazonaws.com/worker@${D}`, "123456789012.dkr.ecr.us-east-1.amazonaws.com", "worker", undefined, D, `123456789012.dkr.ecr.us-east-1.amazonaws.com/worker@${D}`],
    [`ghcr.io/acme/api:1@${D}`, "ghcr.io", "acme/api", "1", D, `ghcr.io/acme/api:1@${D}`],
    // go-digest's three algorithms, as dockerd registers them; the agent pulls and verifies whichever was written.
    [`ghcr.io/acme/api@${F128}`, "ghcr.io", "acme/api", undefined, F128, `ghcr.io/acme/api@${F128}`],
    [`ghcr.io/acme/api@sha384:${"b".repeat(96)}`, "ghcr.io", "acme/api", undefined, `sha384:${"b".repeat(96)}`, `ghcr.io/acme/api@sha384:${"b".repeat(96)}`],
    // Docker keeps a host as written (lower-casing "Foo/bar" would turn it into a Docker Hub name); the registry identity is lower-case.
    ["GHCR.IO/acme/api:1", "ghcr.io", "acme/api", "1", undefined, "GHCR.IO/acme/api:1"],
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

  it.each<[string, RegExp]>([
    ["", /empty/],
    ["Redis:7", /repository name \(library\/Redis\) must be lowercase/],
    ["acme/Tool", /repository name \(acme\/Tool\) must be lowercase/],
    ["ghcr.io/acme/api:", /tag ""/],
    ["ghcr.io/acme/api:-bad", /tag "-bad"/],
    ["ghcr.io/acme/api@sha256:abc", /digest "sha256:abc"/],
    ["ghcr.io/acme/api@sha256:" + "A".repeat(64), /sha256 digest is 64 lower-case hex digits/],
    ["ghcr.io/acme/api@sha384:" + "b".repeat(64), /sha384 digest is 96 lower-case hex digits/],
    ["ghcr.io/acme/api@md5:" + "a".repeat(32), /unsupported digest algorithm "md5"/],
    ["ghcr.io/acme/api@SHA256:" + "a".repeat(64), /"SHA256" is not a digest algorithm/],
    ["ghcr.io//api", /empty component/],
    ["ghcr.io/acme/api:1 ", /whitespace/],
    ["https://ghcr.io/acme/api:1", /URL scheme/],
    ["ghcr.io/acme/-api", /path component "-api"/],
    ["ghcr.io/" + "a".repeat(260), /must not be more than 255 characters/],
    ["[::1]:5000", /IPv6 address is a registry host/],
    ["fd00::1/repo", /registry host "fd00::1"/],
  ])("refuses %j, saying why", (input, why) => {
    expect(refusal(input).message).toMatch(why);
  });

  it("reads the repository out of RepoDigests entries in Docker's short form", () => {
    expect(repoDigestName(`redis@${D}`)).toBe("docker.io/library/redis");
    expect(repoDigestName(`acme/tool@${D}`)).toBe("docker.io/acme/tool");
    expect(repoDigestName(`ghcr.io/acme/api@${D}`)).toBe("ghcr.io/acme/api");
    expect(repoDigestName(`[::1]:5000/repo@${D}`)).toBe("[::1]:5000/repo");
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
