// The only parts of the AWS SDK the agent uses, imported by name so that the
// bundler leaves the rest out; this module is itself loaded on first use.
export { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
export { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
export { fromInstanceMetadata, fromNodeProviderChain } from "@aws-sdk/credential-providers";
export { MetadataService } from "@aws-sdk/ec2-metadata-service";
export { NodeHttpHandler } from "@smithy/node-http-handler";
