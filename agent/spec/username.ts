// Registries whose username is the secret itself. DigitalOcean's registry takes
// the API token as both username and password ("use your API token as both your
// username and password", DigitalOcean's docker login instructions), so the
// username a spec carries is a token too — perhaps an older one than the secret
// in SSM. Such a username is scrubbed from the first line of output, never
// printed or stored (the manifest records `usernameIsSecret`), and the login
// uses the secret from SSM as the username. The host with :443 is the same
// registry (and its username as secret).
import { registryIdentity } from "./registry.ts";

const USERNAME_IS_TOKEN = new Set(["registry.digitalocean.com"]);

export function usernameIsToken(registry: string): boolean {
  return USERNAME_IS_TOKEN.has(registryIdentity(registry));
}

/** The usernames in a spec that are secrets: register them with the scrubber before any output. */
export function secretUsernames(spec: { credentials: { username?: string; usernameIsSecret?: boolean }[] }): string[] {
  return spec.credentials.flatMap((c) => (c.usernameIsSecret && c.username ? [c.username] : []));
}
