// go-plugin's AutoMTLS, plugin side (runtime.plugin_channel: mtls): a
// fresh self-signed certificate for "localhost" (a DNS:localhost SAN is
// what the host verifies), the host's PEM certificate in
// PLUGIN_CLIENT_CERT as the only client CA, and the server certificate's
// DER in the handshake line as base64 WITHOUT padding.

import * as crypto from 'crypto';
import forge from 'node-forge';

export interface ServerCert { keyPem: string; certPem: string; handshakeCert: string }

export function makeServerCert(): ServerCert {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01' + crypto.randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 30_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const attrs = [{ name: 'commonName', value: 'localhost' }, { name: 'organizationName', value: 'rspp node' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { keyPem, certPem, handshakeCert: unpaddedBase64(der) };
}

/** Standard base64 without '=' padding: what go-plugin's handshake parser wants. */
export function unpaddedBase64(b: Buffer): string {
  return b.toString('base64').replace(/=+$/, '');
}
