"""EC P-256 keys of the signed assertions the server checks with public keys: the city's
real-name app's (rule X2) and, in the demo, the development identity provider's.

The citizen's QR code is not signed this way: it carries an HMAC under the server's own key
(``shared/tokens.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An EC P-256 private key with its key id."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        """A new random key (the demo's development identity provider, tests)."""
        return cls(kid, ec.generate_private_key(ec.SECP256R1()))

    def public(self) -> VerifyingKey:
        return VerifyingKey(self.kid, self.private_key.public_key())


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    kid: str
    public_key: ec.EllipticCurvePublicKey
