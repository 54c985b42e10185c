// Verifies an incoming request's AWS Signature Version 4 the way AWS does: the
// signature is recomputed from the signed headers with the secret the stand-in
// issued, and must match; the session token must belong to the same credentials.
import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiresAt: number;
}

export interface IncomingSigned {
  method: string;
  host: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

export type SigV4Result =
  | { ok: true; accessKeyId: string; region: string; service: string }
  | { ok: false; status: number; type: string; message: string };

const AUTH_RE = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;
/** AWS refuses requests whose x-amz-date is more than 5 minutes off. */
const MAX_SKEW_MS = 5 * 60_000;

function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

export async function verifySigV4(
  req: IncomingSigned,
  lookup: (accessKeyId: string) => IssuedCredentials | undefined,
  now: number,
): Promise<SigV4Result> {
  const incomplete = {
    ok: false as const,
    status: 400,
    type: "MissingAuthenticationTokenException",
    message: "Missing Authentication Token",
  };
  const auth = req.headers["authorization"];
  if (!auth) return incomplete;
  const m = AUTH_RE.exec(auth);
  if (!m) return { ...incomplete, type: "IncompleteSignatureException", message: "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters." };
  const [, accessKeyId, , region, service, signedHeaderList, signature] = m as unknown as string[];
  const creds = lookup(accessKeyId!);
  const token = req.headers["x-amz-security-token"];
  if (!creds || token !== creds.sessionToken) {
    return { ok: false, status: 400, type: "UnrecognizedClientException", message: "The security token included in the request is invalid." };
  }
  if (creds.expiresAt <= now) {
    return { ok: false, status: 400, type: "ExpiredTokenException", message: "The security token included in the request is expired" };
  }
  const amzDate = req.headers["x-amz-date"];
  const date = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!date) return incomplete;
  if (Math.abs(date.getTime() - now) > MAX_SKEW_MS) {
    return { ok: false, status: 400, type: "InvalidSignatureException", message: "Signature expired: the request time is too far from the server time." };
  }
  const signed = signedHeaderList!.split(";");
  if (!signed.includes("host") || !signed.includes("x-amz-date")) return incomplete;
  const headers: Record<string, string> = {};
  for (const h of signed) {
    const v = h === "host" ? req.headers["host"] ?? req.host : req.headers[h];
    if (v === undefined) return { ...incomplete, type: "IncompleteSignatureException", message: `Signed header ${h} is missing.` };
    headers[h] = v;
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken },
    region: region!,
    service: service!,
    sha256: Hash.bind(null, "sha256"),
  });
  const unsigned = new HttpRequest({
    method: req.method,
    protocol: "http:",
    hostname: req.host,
    path: req.path,
    query: req.query,
    headers,
    body: req.body,
  });
  const resigned = await signer.sign(unsigned, { signingDate: date, signingRegion: region, signingService: service });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(resigned.headers["authorization"]))?.[1];
  if (expected !== signature) {
    return {
      ok: false,
      status: 400,
      type: "InvalidSignatureException",
      message:
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    };
  }
  return { ok: true, accessKeyId: accessKeyId!, region: region!, service: service! };
}
