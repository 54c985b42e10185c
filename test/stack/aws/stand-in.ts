// A protocol-faithful stand-in for the three AWS services the agent talks to:
// IMDSv2 (session tokens, expiring instance-profile credentials, placement/region),
// SSM GetParameter (AWS JSON 1.1) and ECR GetAuthorizationToken. Every SSM and
// ECR request's SigV4 signature and session token are checked against the
// credentials IMDS issued; errors use AWS's real shapes. Tests tell it to deny,
// throttle, fail or delay, and read its call log.
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { verifySigV4, type IssuedCredentials } from "./sigv4.ts";

export type Api = "imds" | "ssm:GetParameter" | "ecr:GetAuthorizationToken";

export type FaultKind = "deny" | "deny-kms" | "throttle" | "fail" | "delay" | "expired-token" | "signature-mismatch";

export interface Fault {
  api: Api;
  kind: FaultKind;
  /** How many matching calls the fault applies to; default: all. */
  times?: number;
  /** For `delay`: milliseconds before answering. */
  delayMs?: number;
  /** HTTP status for `fail` (default 500). */
  status?: number;
  /** Only calls whose parameter name / registry id equals this. */
  target?: string;
}

export interface Call {
  at: number;
  api: Api;
  /** Parameter name, registry id(s) or IMDS path. */
  target: string;
  region?: string;
  /** The caller's access key: one per box with credentialsPerSession. */
  accessKeyId?: string;
  withDecryption?: boolean;
  outcome: string;
}

export interface Parameter {
  type: "String" | "SecureString" | "StringList";
  value: string;
  version: number;
}

export interface AwsStandInOptions {
  region?: string;
  accountId?: string;
  roleName?: string;
  /** Lifetime of issued role credentials (real IMDS: ~6 h). */
  credentialTtlSeconds?: number;
  /** Lifetime of ECR tokens (real: 12 h). */
  ecrTokenTtlSeconds?: number;
  /** Bind address; loopback only. */
  host?: string;
  /**
   * Issue new role credentials for every IMDS session instead of sharing one set:
   * each agent process then looks like its own instance (the fleet simulation).
   */
  credentialsPerSession?: boolean;
  now?: () => number;
}

interface Bucket {
  rate: number;
  burst: number;
  tokens: number;
  last: number;
}

const json = "application/x-amz-json-1.1";

export class AwsStandIn {
  readonly region: string;
  readonly accountId: string;
  readonly roleName: string;
  readonly calls: Call[] = [];
  readonly parameters = new Map<string, Parameter>();
  /** registry id → the password the ECR-named registry accepts for user AWS. */
  readonly ecrPasswords = new Map<string, string>();
  url = "";
  private readonly server: http.Server;
  private readonly faults: Fault[] = [];
  private readonly issued = new Map<string, IssuedCredentials>();
  private readonly imdsTokens = new Map<string, number>();
  private readonly sessionCredentials = new Map<string, IssuedCredentials>();
  private readonly perSession: boolean;
  private readonly buckets = new Map<Api, Bucket>();
  private current: IssuedCredentials | undefined;
  private readonly credentialTtlMs: number;
  private readonly ecrTokenTtlMs: number;
  private readonly now: () => number;
  private readonly host: string;

  constructor(opts: AwsStandInOptions = {}) {
    this.region = opts.region ?? "us-east-1";
    this.accountId = opts.accountId ?? "123456789012";
    this.roleName = opts.roleName ?? "slothbox-box";
    this.credentialTtlMs = (opts.credentialTtlSeconds ?? 6 * 3600) * 1000;
    this.ecrTokenTtlMs = (opts.ecrTokenTtlSeconds ?? 12 * 3600) * 1000;
    this.now = opts.now ?? Date.now;
    this.host = opts.host ?? "127.0.0.1";
    this.perSession = opts.credentialsPerSession ?? false;
    this.server = http.createServer(this.onRequest);
    this.server.on("connection", (s) => s.setNoDelay(true));
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void this.handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { "content-type": json });
      res.end(JSON.stringify({ __type: "InternalServerError", message: String(err) }));
    });
  };

  private tlsServer: https.Server | undefined;

  /**
   * The same services over TLS too, as AWS's endpoints are, on a port of their own
   * (the instance metadata service stays plain HTTP at `url`, as on EC2). Resolves
   * with the port.
   */
  async startTls(tls: { cert: string; key: string }): Promise<number> {
    const server = https.createServer(tls, this.onRequest);
    this.tlsServer = server;
    await new Promise<void>((resolve) => server.listen(0, this.host, resolve));
    return (server.address() as AddressInfo).port;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, this.host, resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://${this.host}:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const server of [this.server, this.tlsServer]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Environment that points the AWS SDK's standard chain at this stand-in. */
  env(): Record<string, string> {
    return {
      AWS_EC2_METADATA_SERVICE_ENDPOINT: this.url,
      AWS_ENDPOINT_URL_SSM: this.url,
      AWS_ENDPOINT_URL_ECR: this.url,
    };
  }

  putParameter(name: string, value: string, type: Parameter["type"] = "SecureString"): void {
    const prev = this.parameters.get(name);
    this.parameters.set(name, { type, value, version: (prev?.version ?? 0) + 1 });
  }

  fault(f: Fault): void {
    this.faults.push({ ...f });
  }

  clearFaults(): void {
    this.faults.length = 0;
    this.buckets.clear();
  }

  /** AWS's default quotas per account and region: SSM 40 TPS, ECR GetAuthorizationToken 20 TPS with a burst of 200. */
  awsQuotas(): void {
    this.throttle("ssm:GetParameter", 40, 40);
    this.throttle("ecr:GetAuthorizationToken", 20, 200);
  }

  /** AWS-style token bucket for one API: `rate` calls a second, `burst` at once. */
  throttle(api: Api, rate: number, burst: number): void {
    this.buckets.set(api, { rate, burst, tokens: burst, last: this.now() });
  }

  /** Every set of role credentials IMDS handed out: secrets a test searches the agent's output for. */
  issuedCredentials(): IssuedCredentials[] {
    return [...this.issued.values()];
  }

  callsTo(api: Api): Call[] {
    return this.calls.filter((c) => c.api === api);
  }

  /** Expire the current role credentials now, as IMDS rotation would. */
  expireCredentials(): void {
    if (this.current) this.current.expiresAt = this.now() - 1;
  }

  private takeFault(api: Api, target: string): Fault | undefined {
    const i = this.faults.findIndex((f) => f.api === api && (f.target === undefined || f.target === target));
    if (i < 0) return undefined;
    const f = this.faults[i]!;
    if (f.times !== undefined) {
      f.times -= 1;
      if (f.times <= 0) this.faults.splice(i, 1);
    }
    return f;
  }

  private bucketAllows(api: Api): boolean {
    const b = this.buckets.get(api);
    if (!b) return true;
    const t = this.now();
    b.tokens = Math.min(b.burst, b.tokens + ((t - b.last) / 1000) * b.rate);
    b.last = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private issue(t: number): IssuedCredentials {
    const c = {
      accessKeyId: "ASIA" + randomBytes(8).toString("hex").toUpperCase(),
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: "IQoJb3JpZ2luX2VjE" + randomBytes(48).toString("base64"),
      expiresAt: t + this.credentialTtlMs,
    };
    this.issued.set(c.accessKeyId, c);
    return c;
  }

  private credentials(session: string): IssuedCredentials {
    const t = this.now();
    if (this.perSession) {
      let c = this.sessionCredentials.get(session);
      if (!c || c.expiresAt - t < this.credentialTtlMs / 4) {
        c = this.issue(t);
        this.sessionCredentials.set(session, c);
      }
      return c;
    }
    // Real IMDS hands out new credentials well before the old ones expire.
    if (!this.current || this.current.expiresAt - t < this.credentialTtlMs / 4) this.current = this.issue(t);
    return this.current;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    // IMDS, like any HTTP server AWS runs, takes `//latest/…` as `/latest/…` (the
    // SDK's MetadataService joins its endpoint's `/` with the path and sends that).
    const url = new URL((req.url ?? "/").replace(/^\/+/, "/"), "http://stand-in");
    if (url.pathname.startsWith("/latest/")) return this.imds(req, res, url.pathname);
    const target = String(req.headers["x-amz-target"] ?? "");
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => (query[k] = v));
    const sig = await verifySigV4(
      { method: req.method ?? "GET", host: headers["host"] ?? "", path: url.pathname, query, headers, body },
      (id) => this.issued.get(id),
      this.now(),
    );
    const api: Api | undefined =
      target === "AmazonSSM.GetParameter"
        ? "ssm:GetParameter"
        : target === "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
          ? "ecr:GetAuthorizationToken"
          : undefined;
    if (!api) return this.error(res, 400, "UnknownOperationException", `Unknown operation ${target}`);
    let input: Record<string, unknown>;
    try {
      input = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      return this.error(res, 400, "SerializationException", "Start of structure or map found where not expected.");
    }
    const name =
      api === "ssm:GetParameter" ? String(input["Name"] ?? "") : ((input["registryIds"] as string[] | undefined) ?? []).join(",");
    const call: Call = { at: this.now(), api, target: name, outcome: "ok" };
    if (api === "ssm:GetParameter") call.withDecryption = input["WithDecryption"] === true;
    this.calls.push(call);
    if (!sig.ok) {
      call.outcome = sig.type;
      return this.error(res, sig.status, sig.type, sig.message);
    }
    call.region = sig.region;
    call.accessKeyId = sig.accessKeyId;
    if (!this.bucketAllows(api)) {
      call.outcome = "ThrottlingException";
      return this.error(res, 400, "ThrottlingException", "Rate exceeded");
    }
    const fault = this.takeFault(api, name);
    if (fault?.kind === "delay") await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
    else if (fault) {
      call.outcome = fault.kind;
      return this.answerFault(res, api, fault, name, sig.region, { method: req.method ?? "POST", path: url.pathname, headers, body });
    }
    if (api === "ssm:GetParameter") return this.getParameter(res, call, name, input["WithDecryption"] === true, sig.region);
    return this.getAuthorizationToken(res, call, (input["registryIds"] as string[] | undefined) ?? [], sig.region);
  }

  private roleArn(): string {
    return `arn:aws:sts::${this.accountId}:assumed-role/${this.roleName}/i-0123456789abcdef0`;
  }

  private answerFault(
    res: http.ServerResponse,
    api: Api,
    f: Fault,
    name: string,
    region: string,
    request: { method: string; path: string; headers: Record<string, string>; body: string },
  ): void {
    const action = api;
    const resource =
      api === "ssm:GetParameter" ? `arn:aws:ssm:${region}:${this.accountId}:parameter${name.startsWith("/") ? "" : "/"}${name}` : "*";
    switch (f.kind) {
      case "deny":
        return this.error(
          res,
          400,
          "AccessDeniedException",
          `User: ${this.roleArn()} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
        );
      case "deny-kms":
        return this.error(
          res,
          400,
          "AccessDeniedException",
          `User: ${this.roleArn()} is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:${region}:${this.accountId}:key/0b6b5b8e-3c1f-4f2e-9a57-6d1f0f0e9d21 because no identity-based policy allows the kms:Decrypt action (Service: AWSKMS; Status Code: 400; Error Code: AccessDeniedException)`,
        );
      case "throttle":
        return this.error(res, 400, "ThrottlingException", "Rate exceeded");
      case "expired-token":
        return this.error(res, 400, "ExpiredTokenException", "The security token included in the request is expired");
      case "signature-mismatch":
        return this.error(res, 400, "InvalidSignatureException", signatureMismatchMessage(request, region, api === "ssm:GetParameter" ? "ssm" : "ecr"));
      case "fail":
      default: {
        const status = f.status ?? 500;
        // 503 in the words of AWS's common errors of every JSON service (docs.aws.amazon.com/systems-manager/latest/APIReference/CommonErrors.html:
        // "ServiceUnavailable — The request has failed due to a temporary failure of the server. HTTP Status Code: 503").
        if (status === 503) return this.error(res, status, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.");
        return this.error(res, status, "InternalServerError", "We encountered an internal error. Please try again.");
      }
    }
  }

  private getParameter(res: http.ServerResponse, call: Call, name: string, decrypt: boolean, region: string): void {
    const p = this.parameters.get(name);
    if (!p) {
      call.outcome = "ParameterNotFound";
      return this.error(res, 400, "ParameterNotFound", undefined);
    }
    const value = p.type === "SecureString" && !decrypt ? Buffer.from("kms:" + p.value).toString("base64") : p.value;
    this.send(res, 200, {
      Parameter: {
        Name: name,
        Type: p.type,
        Value: value,
        Version: p.version,
        LastModifiedDate: Math.floor(this.now() / 1000),
        ARN: `arn:aws:ssm:${region}:${this.accountId}:parameter${name.startsWith("/") ? "" : "/"}${name}`,
        DataType: "text",
      },
    });
  }

  private getAuthorizationToken(res: http.ServerResponse, call: Call, registryIds: string[], region: string): void {
    const ids = registryIds.length ? registryIds : [this.accountId];
    const expiresAt = (this.now() + this.ecrTokenTtlMs) / 1000;
    const data = [];
    for (const id of ids) {
      const password = this.ecrPasswords.get(id);
      if (password === undefined) {
        call.outcome = "InvalidParameterException";
        return this.error(res, 400, "InvalidParameterException", `Invalid parameter at 'registryIds' failed to satisfy constraint: 'registry ${id} not found'`);
      }
      data.push({
        authorizationToken: Buffer.from(`AWS:${password}`).toString("base64"),
        expiresAt,
        proxyEndpoint: `https://${id}.dkr.ecr.${region}.amazonaws.com`,
      });
    }
    this.send(res, 200, { authorizationData: data });
  }

  private imds(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const t = this.now();
    const fault = this.takeFault("imds", path);
    if (fault) {
      const call: Call = { at: t, api: "imds", target: path, outcome: fault.kind };
      this.calls.push(call);
      if (fault.kind === "delay") {
        setTimeout(() => this.imdsAnswer(req, res, path, t), fault.delayMs ?? 1000);
        return;
      }
      res.writeHead(fault.status ?? 500).end();
      return;
    }
    this.imdsAnswer(req, res, path, t);
  }

  private imdsAnswer(req: http.IncomingMessage, res: http.ServerResponse, path: string, t: number): void {
    const call: Call = { at: t, api: "imds", target: path, outcome: "ok" };
    this.calls.push(call);
    if (path === "/latest/api/token") {
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (req.method !== "PUT" || !Number.isInteger(ttl) || ttl < 1 || ttl > 21600) {
        call.outcome = "400";
        res.writeHead(400).end();
        return;
      }
      const token = randomBytes(32).toString("base64");
      this.imdsTokens.set(token, t + ttl * 1000);
      res.writeHead(200, { "content-type": "text/plain", "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) }).end(token);
      return;
    }
    // IMDSv1 is refused: every read needs a live session token (HttpTokens=required).
    const token = req.headers["x-aws-ec2-metadata-token"];
    const exp = typeof token === "string" ? this.imdsTokens.get(token) : undefined;
    if (exp === undefined || exp <= t) {
      call.outcome = "401";
      res.writeHead(401).end();
      return;
    }
    const text = (s: string): void => {
      res.writeHead(200, { "content-type": "text/plain" }).end(s);
    };
    if (path === "/latest/meta-data/placement/region") return text(this.region);
    if (path === "/latest/meta-data/iam/security-credentials/" || path === "/latest/meta-data/iam/security-credentials") return text(this.roleName);
    if (path === `/latest/meta-data/iam/security-credentials/${this.roleName}`) {
      const c = this.credentials(String(token));
      return text(
        JSON.stringify({
          Code: "Success",
          LastUpdated: new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z"),
          Type: "AWS-HMAC",
          AccessKeyId: c.accessKeyId,
          SecretAccessKey: c.secretAccessKey,
          Token: c.sessionToken,
          Expiration: new Date(c.expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
        }),
      );
    }
    call.outcome = "404";
    res.writeHead(404).end();
  }

  private error(res: http.ServerResponse, status: number, type: string, message: string | undefined): void {
    this.send(res, status, message === undefined ? { __type: type } : { __type: type, message }, { "x-amzn-errortype": type });
  }

  private send(res: http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": json,
      "content-length": Buffer.byteLength(text),
      "x-amzn-requestid": randomBytes(16).toString("hex"),
      ...extra,
    });
    res.end(text);
  }
}

/**
 * AWS's answer to a signature it recomputes differently: the canonical request
 * and string to sign it expected, signed headers and their values included —
 * the session token among them. The words and layout as AWS sends them:
 * aws/aws-sdk-cpp#17 (InvalidSignatureException from a JSON API, with
 * `x-amz-security-token:` in the canonical string), aws/aws-cli#5341 (the
 * SignatureDoesNotMatch text), amzn/selling-partner-api-models#1900.
 */
function signatureMismatchMessage(req: { method: string; path: string; headers: Record<string, string>; body: string }, region: string, service: string): string {
  const signed = /SignedHeaders=([^,]+)/.exec(req.headers["authorization"] ?? "")?.[1]?.split(";") ?? [];
  const date = req.headers["x-amz-date"] ?? "";
  const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
  const canonical = [req.method, req.path, "", ...signed.map((h) => `${h}:${(req.headers[h] ?? "").trim()}`), "", signed.join(";"), sha256(req.body)].join("\n");
  const stringToSign = ["AWS4-HMAC-SHA256", date, `${date.slice(0, 8)}/${region}/${service}/aws4_request`, sha256(canonical)].join("\n");
  return (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n" +
    `The Canonical String for this request should have been\n'${canonical}'\n\nThe String-to-Sign should have been\n'${stringToSign}'\n`
  );
}
