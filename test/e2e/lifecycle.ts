// The AWS stand-in and the control plane most e2e files run beside the stack, with
// the boxes they made: started before the file's tests, stopped and removed after.
import { afterAll, beforeAll } from "vitest";
import { AwsStandIn } from "../stack/aws/stand-in.ts";
import { ControlPlane } from "../stack/control-plane.ts";
import { uid, type Box } from "./harness.ts";

/** `setup` runs once both answer (the secrets and ECR passwords the file's specs name). */
export function awsAndControlPlane(setup: () => void = () => undefined): { aws: AwsStandIn; cp: ControlPlane; boxes: Box[] } {
  const aws = new AwsStandIn();
  const cp = new ControlPlane("cp-" + uid());
  const boxes: Box[] = [];
  beforeAll(async () => {
    await aws.start();
    await cp.start();
    setup();
  });
  afterAll(async () => {
    for (const b of boxes) b.cleanup();
    await aws.stop();
    await cp.stop();
  });
  return { aws, cp, boxes };
}
