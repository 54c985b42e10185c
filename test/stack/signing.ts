// Real signatures for the stack's images, made by third-party signers:
// - cosign 2.5.0 (Debian trixie's, unpacked by scripts/fetch-cosign.sh) writes the
//   classic form: the `sha256-<hex>.sig` tag, one simple-signing layer per signature.
// - @sigstore/sign builds a Sigstore bundle (a DSSE envelope over cosign 3's in-toto
//   statement, no transparency log) and @sigstore/oci attaches it as an OCI 1.1
//   referrer, writing the `sha256-<hex>` fallback index where the registry has no
//   referrers API (distribution 2.8: none), as cosign 3 does.
// Keys are made here with node:crypto; cosign reads them from its own encrypted key
// file (scrypt + nacl/secretbox around PKCS#8, go-tuf's encrypted.go), written here:
// Debian's cosign 2.5.0 refuses to import RSA and ECDSA PEM keys ("unsupported
// public key type"), and the file is the same either way.
import { execFile } from "node:child_process";
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, scryptSync, sign, type KeyObject } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { attachArtifactToImage } from "@sigstore/oci";
import { DSSEBundleBuilder, type Signer } from "@sigstore/sign";
import { bundleToJSON } from "@sigstore/bundle";
import nacl from "tweetnacl";
import { getContent, pushBlob, putManifest, type RegistryTarget } from "./images.ts";

export const COSIGN = path.join(process.env["SLOTHBOX_COSIGN_DIR"] ?? "/var/cache/slothbox-dev/cosign", "root/usr/bin/cosign");

export type KeyKind = "p256" | "p384" | "rsa" | "ed25519";

export interface TestKey {
  kind: KeyKind;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as a policy lists it (SPKI PEM). */
  publicPem: string;
  /** SHA-256 of the SPKI DER, hex: how reports name it. */
  keyId: string;
}

export function makeKey(kind: KeyKind): TestKey {
  const pair =
    kind === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : kind === "ed25519"
        ? generateKeyPairSync("ed25519")
        : generateKeyPairSync("ec", { namedCurve: kind === "p256" ? "P-256" : "P-384" });
  const publicKey = createPublicKey(pair.privateKey);
  const der = publicKey.export({ type: "spki", format: "der" });
  return {
    kind,
    privateKey: pair.privateKey,
    publicKey,
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyId: createHash("sha256").update(der).digest("hex"),
  };
}

const PASSWORD = "sign-test";

/** cosign's encrypted private key file for `key` (go-tuf encrypted.go: scrypt N=32768 r=8 p=1, nacl/secretbox). */
function cosignKeyFile(dir: string, key: TestKey): string {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const secret = scryptSync(PASSWORD, salt, 32, { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  const pkcs8 = key.privateKey.export({ type: "pkcs8", format: "der" });
  const ciphertext = nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(secret));
  const doc = {
    kdf: { name: "scrypt", params: { N: 32768, r: 8, p: 1 }, salt: salt.toString("base64") },
    cipher: { name: "nacl/secretbox", nonce: nonce.toString("base64") },
    ciphertext: Buffer.from(ciphertext).toString("base64"),
  };
  const body = (Buffer.from(JSON.stringify(doc)).toString("base64").match(/.{1,64}/g) ?? []).join("\n");
  const file = path.join(dir, `${key.kind}-${key.keyId.slice(0, 8)}.key`);
  writeFileSync(file, `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${body}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`, { mode: 0o600 });
  return file;
}

/** The registry's address as cosign reaches it (plain HTTP on loopback): `127.x.0.2`. */
function address(target: RegistryTarget): string {
  return new URL(target.url).host;
}

/**
 * `cosign sign --key` of `repository@digest` on `target`, as its pusher (the
 * stack's admin, or ECR's user): cosign 2.5.0 writes the classic `.sig` tag.
 */
export async function cosignSign(target: RegistryTarget, repository: string, digest: string, key: TestKey): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "sbx-cosign-"));
  try {
    const keyFile = cosignKeyFile(dir, key);
    mkdirSync(path.join(dir, "docker"));
    const auth = Buffer.from(`${target.user ?? ""}:${target.password ?? ""}`).toString("base64");
    writeFileSync(path.join(dir, "docker/config.json"), JSON.stringify({ auths: target.user !== undefined ? { [address(target)]: { auth } } : {} }), { mode: 0o600 });
    const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: dir, DOCKER_CONFIG: path.join(dir, "docker"), COSIGN_PASSWORD: PASSWORD, TUF_ROOT: path.join(dir, "tuf") };
    // The stack's Docker Hub is on TLS under its own CA, which cosign is not given: it skips the check there.
    const transport = target.url.startsWith("https:") ? "--allow-insecure-registry" : "--allow-http-registry";
    const args = ["sign", "--yes", "--key", keyFile, "--tlog-upload=false", transport, `${address(target)}/${repository}@${digest}`];
    await promisify(execFile)(COSIGN, args, { env, timeout: 120_000 }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`cosign ${args.join(" ")}: ${err.stderr || err.message}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The statement cosign 3's `sign` puts in its bundle (cosign: sign.go signDigestBundle, pkg/types/predicate.go). */
export function cosignStatement(digest: string): Buffer {
  const [algorithm, hex] = digest.split(":") as [string, string];
  return Buffer.from(JSON.stringify({ _type: "https://in-toto.io/Statement/v1", subject: [{ digest: { [algorithm]: hex } }], predicateType: "https://sigstore.dev/cosign/sign/v1", predicate: {} }));
}

function signer(key: TestKey): Signer {
  const hash = key.kind === "ed25519" ? null : key.kind === "p384" ? "sha384" : "sha256";
  return {
    sign: async (data) => ({ signature: sign(hash, data, key.privateKey), key: { $case: "publicKey", publicKey: key.publicPem, hint: key.keyId } }),
  };
}

/** A Sigstore bundle JSON signed by `key` over `statement` (default: cosign 3's statement for `digest`), no transparency log. */
export async function makeBundle(key: TestKey, statement: Buffer): Promise<Buffer> {
  const bundle = await new DSSEBundleBuilder({ signer: signer(key), witnesses: [] }).create({ data: statement, type: "application/vnd.in-toto+json" });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

/**
 * Runs `fn` with `127.0.0.1:<port>` forwarding to the registry's front:
 * @sigstore/oci speaks plain HTTP to `localhost` and `127.0.0.1` only.
 */
async function viaLocalhost<T>(target: RegistryTarget, fn: (registry: string) => Promise<T>): Promise<T> {
  const to = new URL(target.url);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(to.port || 80), to.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    return await fn(`127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Attaches `bundle` to `repository@digest` as cosign 3 does (a referrer, or the fallback tag index). */
export async function attachBundle(target: RegistryTarget, repository: string, digest: string, bundle: Buffer): Promise<void> {
  await viaLocalhost(target, (registry) =>
    attachArtifactToImage({
      imageName: `${registry}/${repository}`,
      imageDigest: digest,
      artifact: bundle,
      mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      annotations: { "dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1" },
      credentials: { username: target.user ?? "", password: target.password ?? "" },
    }),
  );
}

/**
 * Copies the classic signature of `from` to the tag of `to` (an attacker who can
 * push to the repository), its payloads passed through `edit` first: an edited
 * payload is a new blob, and its old signature no longer matches it.
 */
export async function copySignature(target: RegistryTarget, repository: string, from: string, to: string, edit?: (payload: Buffer) => Buffer): Promise<void> {
  const sig = await getContent(target, repository, "manifests", `${from.replace(":", "-")}.sig`);
  const manifest = JSON.parse(sig.body.toString("utf8")) as { layers: { digest: string; size: number }[] };
  if (edit) {
    for (const layer of manifest.layers) {
      const payload = edit((await getContent(target, repository, "blobs", layer.digest)).body);
      layer.digest = `sha256:${createHash("sha256").update(payload).digest("hex")}`;
      layer.size = payload.length;
      await pushBlob(target, repository, payload, layer.digest);
    }
  }
  await putManifest(target, repository, `${to.replace(":", "-")}.sig`, { body: Buffer.from(JSON.stringify(manifest)), mediaType: sig.mediaType || "application/vnd.oci.image.manifest.v1+json" });
}
