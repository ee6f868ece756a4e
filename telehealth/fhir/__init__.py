"""The FHIR R4 face of the service: mapping to fhir.resources (R4B models) and the /fhir API."""
