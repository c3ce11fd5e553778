"""A BankID simulator speaking BankID's Relying Party API v6.0, for the demo and tests.

``rp_api`` answers the RP API as BankID does (every call checked), ``app_actions`` is what
the person does in the BankID app, ``orders`` an order's life that both share, ``models``
the orders (the database is the source of truth, so any number of web processes can serve
it), ``signature`` the XML signature of a completed order (by a user certificate of the
test PKI, :mod:`devtools.pki`), ``transport`` the BankID client's way to it in the
process, and ``views`` the blueprint ``bp``: the RP API under ``/bankid-simulator/rp/v6.0/``
and the page standing in for the BankID app, ``/bankid-simulator/app``.
"""
