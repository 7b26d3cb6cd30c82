"""Security: who is calling (tokens), what they may do (SMART scopes, care units), and the
access log (AuditEvent) and Provenance every access and write leaves behind."""
