// The real AWS ports: SDK v3 clients over the standard credential chain (on a
// box it ends at the instance profile via IMDSv2). Loaded only when a credential
// needs them, so that anonymous and warm bakes pay nothing for the SDK.
import { raceAbort } from "../abort.ts";
import type { Config } from "../config.ts";
import { AgentError } from "../errors/agent-error.ts";
import type { Scrubber } from "../errors/scrub.ts";
import { SpreadRetryStrategy } from "./retry-strategy.ts";
import type { AwsPorts, EcrToken, ParameterValue } from "./types.ts";

/** Attempts for the SDK's own retry modes (kept for comparison, docs/fleet.md). */
const SDK_MAX_ATTEMPTS = 10;

export interface AwsEnv {
  env: Record<string, string | undefined>;
}

const sdk = () => import("./aws-sdk.ts");

async function imdsRegion(): Promise<string> {
  const { MetadataService } = await sdk();
  const svc = new MetadataService({ httpOptions: { timeout: 2000 } });
  try {
    return (await svc.request("/latest/meta-data/placement/region", {})).trim();
  } catch (err) {
    throw new AgentError(
      "aws_credentials_unavailable",
      `cannot determine the AWS region for SSM: neither awsRegion nor AWS_REGION is set, and IMDSv2 placement/region failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** SSM region: config, else AWS_REGION, else the instance's region from IMDSv2. */
export async function ssmRegion(config: Config, env: Record<string, string | undefined>): Promise<string> {
  return config.awsRegion ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? (await imdsRegion());
}

/** The SDK's retry settings for the configured strategy. */
function retrySettings(config: Config) {
  if (config.awsRetryStrategy === "spread") return { retryStrategy: new SpreadRetryStrategy(config.awsMaxWaitSeconds * 1000) };
  return { retryMode: config.awsRetryStrategy, maxAttempts: SDK_MAX_ATTEMPTS };
}

/** `scrubber` learns the instance role's credentials the moment the SDK resolves them, and again at each refresh. */
export function createAwsPorts(config: Config, env: Record<string, string | undefined>, scrubber: Scrubber): AwsPorts {
  let ssm: Promise<import("./aws-sdk.ts").SSMClient> | undefined;
  const ecrClients = new Map<string, Promise<import("./aws-sdk.ts").ECRClient>>();
  const credentials = sdk().then((m) => m.fromNodeProviderChain());
  // Started early on purpose; a failure surfaces where it is awaited, not as an unhandled rejection.
  credentials.catch(() => undefined);
  // Both clients share one memoized credential provider: one IMDS round per role session.
  const sharedCredentials = () =>
    credentials.then(async (p) => {
      const c = await p();
      scrubber.addRoleCredentials(c);
      return c;
    });

  const getSsm = () =>
    (ssm ??= (async () => {
      const [{ SSMClient }, region] = await Promise.all([sdk(), ssmRegion(config, env)]);
      return new SSMClient({ region, credentials: sharedCredentials, ...retrySettings(config) });
    })());
  const getEcr = (region: string) => {
    let c = ecrClients.get(region);
    if (!c) {
      c = sdk().then(
        ({ ECRClient }) => new ECRClient({ region, credentials: sharedCredentials, ...retrySettings(config) }),
      );
      ecrClients.set(region, c);
    }
    return c;
  };

  return {
    async checkCredentials() {
      await sharedCredentials();
    },
    async getParameter(name, signal): Promise<ParameterValue> {
      const [client, { GetParameterCommand }] = await Promise.all([getSsm(), sdk()]);
      const out = await raceAbort(client.send(new GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal: signal }), signal);
      return { type: out.Parameter?.Type ?? "", value: out.Parameter?.Value ?? "" };
    },
    async getEcrToken(region, registryId, signal): Promise<EcrToken> {
      const [client, { GetAuthorizationTokenCommand }] = await Promise.all([getEcr(region), sdk()]);
      const out = await raceAbort(client.send(new GetAuthorizationTokenCommand({ registryIds: [registryId] }), { abortSignal: signal }), signal);
      const data = out.authorizationData?.[0];
      return {
        authorizationToken: data?.authorizationToken ?? "",
        ...(data?.expiresAt ? { expiresAt: data.expiresAt } : {}),
        ...(data?.proxyEndpoint ? { proxyEndpoint: data.proxyEndpoint } : {}),
      };
    },
  };
}
