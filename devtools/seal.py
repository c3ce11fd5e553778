"""The agency's seal made with the test PKI: a seal source for the demo and the tests.

:class:`TestPkiSeal` is a :class:`~app.documents.pki.SealSource`, as the product's own
:class:`~app.documents.pki.SealFiles` is: the stand-ins plugin gives it to the product in
:attr:`Settings.seal_source <app.config.Settings.seal_source>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import x509

from app.documents.pki import SealMaterial, load_certificates, load_private_key
from devtools.pki import ensure_test_pki
from devtools.timestamps import local_timestamper


@dataclass(frozen=True)
class TestPkiSeal:
    """The seal certificate of the test PKI in ``directory`` (made if missing), its chain
    and root, and the test TSA in the process."""

    __test__ = False  # not a pytest test class, whatever its name

    directory: str

    def load_seal_material(self) -> SealMaterial:
        paths = ensure_test_pki(self.directory)
        return SealMaterial(
            signing_cert=load_certificates(paths.seal_cert, "seal certificate")[0],
            private_key=load_private_key(paths.seal_key, None, "seal key"),
            chain=load_certificates(paths.chain, "seal chain"),
            trust_roots=self.load_trust_roots(),
            timestamper=local_timestamper(self.directory),
        )

    def load_trust_roots(self) -> tuple[x509.Certificate, ...]:
        return load_certificates(ensure_test_pki(self.directory).trust_roots, "test root")

    def load_seal_certificate(self) -> x509.Certificate:
        return load_certificates(ensure_test_pki(self.directory).seal_cert, "seal certificate")[0]
