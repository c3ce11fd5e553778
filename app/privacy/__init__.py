"""Personal data as an agency must handle it: who on SPV's staff looked at whose data (the
access log, with the API's own log beside it) and the register extract (GDPR art. 15)."""
