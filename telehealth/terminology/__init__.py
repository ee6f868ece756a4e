"""Clinical code lists the service checks input against (WHO ICD-10)."""
