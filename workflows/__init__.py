"""Errand state machine, broker set-up, outbox and actors."""
