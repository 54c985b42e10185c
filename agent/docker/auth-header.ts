// X-Registry-Auth: base64url of the auth JSON, decoded by Go's
// base64.URLEncoding, which expects `=` padding. Node's 'base64url' omits it,
// and dockerd silently pulls anonymously when it cannot decode the header.
import type { RegistryAuth } from "../credentials/types.ts";

export function encodeRegistryAuth(auth: RegistryAuth): string {
  const raw = Buffer.from(JSON.stringify({ username: auth.username, password: auth.password, serveraddress: auth.serverAddress })).toString(
    "base64url",
  );
  return raw + "=".repeat((4 - (raw.length % 4)) % 4);
}
