"""X.509 material for the local stack: a CA, the broker's server certificate and
client certificates for devices and the cloud-side identity.

Keys are EC P-256 for the local stack because they are fast to create; device
certificates for a real IoT hub use RSA 2048 (see ``plant2edge.connect``).
Private keys are written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_COMMON_NAME = "plant2edge local CA"
CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 825

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class CertificateAuthority:
    cert_path: Path
    key_path: Path

    def load(self) -> tuple[x509.Certificate, PrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = serialization.load_pem_private_key(
            self.key_path.read_bytes(), password=None
        )
        return cert, key

    def cert_pem(self) -> str:
        return self.cert_path.read_text()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def sha256_thumbprint(cert: x509.Certificate) -> str:
    """Return the SHA-256 thumbprint as IoT Hub expects it: upper-case hex, no colons."""
    return cert.fingerprint(hashes.SHA256()).hex().upper()


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def ensure_ca(folder: Path) -> CertificateAuthority:
    """Create the local CA in ``folder`` unless it exists, and return it.

    The CA is kept between stack restarts so that device connection files
    issued earlier stay valid.
    """
    ca = CertificateAuthority(folder / "ca.pem", folder / "ca.key")
    if ca.cert_path.is_file() and ca.key_path.is_file():
        return ca
    key = new_ec_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_COMMON_NAME))
        .issuer_name(_name(CA_COMMON_NAME))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    write_private(ca.key_path, private_key_pem(key))
    write_public(ca.cert_path, cert_pem(cert))
    return ca


def issue_certificate(
    ca: CertificateAuthority,
    common_name: str,
    key: PrivateKey,
    *,
    server_names: tuple[str, ...] = (),
) -> x509.Certificate:
    """Sign a leaf certificate for ``common_name`` with the local CA.

    With ``server_names`` the certificate is a TLS server certificate for those
    DNS names and IP addresses; without them it is a TLS client certificate.
    """
    ca_cert, ca_key = ca.load()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server_names:
        usage = ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]),
            critical=False,
        )
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def write_key_pair(
    ca: CertificateAuthority,
    common_name: str,
    cert_path: Path,
    key_path: Path,
    *,
    server_names: tuple[str, ...] = (),
) -> x509.Certificate:
    """Create a key, have the CA sign a certificate for it and write both files."""
    key = new_ec_key()
    cert = issue_certificate(ca, common_name, key, server_names=server_names)
    write_private(key_path, private_key_pem(key))
    write_public(cert_path, cert_pem(cert))
    return cert
