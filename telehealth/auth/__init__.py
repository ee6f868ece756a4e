"""Identities, roles, scopes, tokens, access rules and the audit log."""
