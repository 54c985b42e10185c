// Test certificates made with openssl: a CA that the test dockerd trusts (via
// SSL_CERT_FILE), a TLS certificate for Docker Hub's host names, and the token
// server's signing certificate that the registries trust for JWTs.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface TestCerts {
  caCert: string;
  /** System CAs plus the test CA: SSL_CERT_FILE for dockerd. */
  bundleFile: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  signingCertPem: string;
  signingKeyPem: string;
  signingCertFile: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export function makeCerts(dir: string, tlsHosts: string[]): TestCerts {
  const f = (n: string) => path.join(dir, n);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=slothbox test CA", "-keyout", "ca.key", "-out", "ca.pem"], dir);
  const san = tlsHosts.map((h) => (/^\d{1,3}(\.\d{1,3}){3}$/.test(h) ? `IP:${h}` : `DNS:${h}`));
  writeFileSync(f("tls.ext"), `subjectAltName=${san.join(",")}\nextendedKeyUsage=serverAuth\n`);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${tlsHosts[0]}`, "-keyout", "tls.key", "-out", "tls.csr"], dir);
  openssl(["x509", "-req", "-in", "tls.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "tls.ext", "-out", "tls.pem"], dir);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=slothbox test token signer", "-keyout", "signing.key", "-out", "signing.pem"], dir);
  const caCert = readFileSync(f("ca.pem"), "utf8");
  const system = (() => {
    try {
      return readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8");
    } catch {
      return "";
    }
  })();
  writeFileSync(f("bundle.pem"), system + "\n" + caCert);
  return {
    caCert,
    bundleFile: f("bundle.pem"),
    tlsCertFile: f("tls.pem"),
    tlsKeyFile: f("tls.key"),
    signingCertPem: readFileSync(f("signing.pem"), "utf8"),
    signingKeyPem: readFileSync(f("signing.key"), "utf8"),
    signingCertFile: f("signing.pem"),
  };
}
