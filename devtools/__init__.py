"""Stand-ins for the demo and the tests, outside the product.

The BankID simulator (:mod:`devtools.bankid_simulator`), the mail sink
(:mod:`devtools.mail_sink`), the demo scanner (:mod:`devtools.demo_scanner`), one test PKI
with its time-stamping authority (:mod:`devtools.pki`, :mod:`devtools.timestamps`,
:mod:`devtools.seal`) and the demo data (:mod:`devtools.seed`). They plug into the
product through :class:`devtools.plugin.StandIns`, a plugin of :func:`app.create_app`; the
``behorighet demo`` and ``seed-demo`` commands come from :mod:`devtools.cli`. Their tables
(:mod:`devtools.db`) are outside the product's metadata and migrations.

The product never imports this package.
"""
