"""Consult requests, triage queues, booking and appointments (the state machines)."""
