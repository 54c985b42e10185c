// The shapes credentials take inside the agent, and the ports over AWS.
import type { EcrHost } from "../spec/registry.ts";

/** What Docker needs to log in and pull; never written anywhere. */
export interface RegistryAuth {
  username: string;
  password: string;
  serverAddress: string;
  /** When the registry stops accepting it (ECR tokens); undefined: no known expiry. */
  expiresAt?: number;
}

/** GetParameter's Parameter as AWS answered it: a malformed answer may lack either part. */
export interface ParameterValue {
  type?: string;
  value?: string;
}

/**
 * One AWS call that failed: the SDK's own error (`cause`), the endpoint that
 * failed (the service's, or the instance metadata service's when the role's
 * credentials could not be obtained) and how many attempts the SDK made (more
 * than one only while AWS throttled).
 */
export class AwsCallError extends Error {
  readonly endpoint: string;
  readonly attempts: number;

  constructor(cause: unknown, endpoint: string, attempts: number) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = "AwsCallError";
    this.endpoint = endpoint;
    this.attempts = attempts;
  }
}

/**
 * SSM GetParameter with decryption; undefined where AWS answered without a Parameter.
 * Rejects with an AwsCallError (or, from fakes, the SDK-shaped error itself).
 */
export type GetParameter = (name: string, signal: AbortSignal) => Promise<ParameterValue | undefined>;

/** GetAuthorizationToken's authorizationData as AWS answered it. */
export interface EcrToken {
  /** base64 of `AWS:<password>`; missing from a malformed answer. */
  authorizationToken?: string;
  expiresAt?: Date;
}

/**
 * ECR GetAuthorizationToken for the registry host's account, at the API endpoint of its region and
 * kind (FIPS, dual-stack); undefined where AWS answered without authorizationData. Rejects like GetParameter.
 */
export type GetEcrToken = (host: EcrHost, signal: AbortSignal) => Promise<EcrToken | undefined>;

export interface AwsPorts {
  getParameter: GetParameter;
  getEcrToken: GetEcrToken;
  /**
   * The daemon's /readyz: resolves when the standard chain yields credentials and
   * the SSM endpoint takes a connection, within `signal`; rejects with a message
   * that names the endpoint that failed.
   */
  /** The role's credentials are obtainable; with `ssm`, the SSM endpoint also takes a connection. */
  checkReachable: (signal: AbortSignal, opts: { ssm: boolean }) => Promise<void>;
  /** The endpoint a call goes to first, as the SDK resolves it (check-credential prints it). */
  endpointOf: (target: { service: "ssm" } | { service: "ecr"; host: EcrHost }) => Promise<string>;
  /** Where the instance role's credentials come from: the instance metadata service's endpoint. */
  imdsEndpoint: string;
}
