"""A BankID simulator speaking BankID's Relying Party API v6.0 on loopback, for the demo and tests.

``protocol`` holds the rules (plain functions on a session), ``models`` the orders (the
database is the source of truth, so any number of web processes can serve it), ``pki`` the
simulator's CA chain and user certificates, ``signature`` the XML signature of a completed
order, and ``views`` the blueprint ``bp``: the RP API under ``/bankid-simulator/rp/v6.0/``
and the page standing in for the BankID app, ``/bankid-simulator/app``.
"""
