// The shapes credentials take inside the agent, and the ports over AWS.

/** What Docker needs to log in and pull; never written anywhere. */
export interface RegistryAuth {
  username: string;
  password: string;
  serverAddress: string;
  /** When the registry stops accepting it (ECR tokens); undefined: no known expiry. */
  expiresAt?: number;
}

export interface ParameterValue {
  type: string;
  value: string;
}

/** SSM GetParameter with decryption. Rejects with the SDK's own error. */
export type GetParameter = (name: string, signal: AbortSignal) => Promise<ParameterValue>;

export interface EcrToken {
  /** base64 of `AWS:<password>` */
  authorizationToken: string;
  expiresAt?: Date;
  proxyEndpoint?: string;
}

/** ECR GetAuthorizationToken in `region` for `registryId`. Rejects with the SDK's own error. */
export type GetEcrToken = (region: string, registryId: string, signal: AbortSignal) => Promise<EcrToken>;

export interface AwsPorts {
  getParameter: GetParameter;
  getEcrToken: GetEcrToken;
  /** Resolves when the standard chain yields credentials (the daemon's /readyz). */
  checkCredentials: () => Promise<void>;
}
