"""Scanned intake: paper forms posted to SPV, scanned by a clerk and matched by their QR codes."""
