"""The patient's consent as FHIR R4 ``Consent``: one resource per purpose, ``active`` until it
is withdrawn (then ``inactive``, its provision's period ended at the withdrawal).

Consent to the consultation itself is a ``treatment`` consent; recording the session and
sharing the record with the consulting facility are ``patient-privacy`` consents. The purpose
is the provision's ``code`` (our code system) and its ``action`` (HL7 consentaction). A signed
paper points at its scan (the attachment's ``DocumentReference``); a spoken consent names its
witness in ``sourceAttachment``. Who recorded it stays in the audit and ``/api`` (R4 Consent
has no recorder). vn-core-ig has no Consent profile; this follows base R4.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from telehealth.consent.models import ConsentMethod, ConsentPurpose, PatientConsent
from telehealth.directory.models import Patient
from telehealth.fhir.mapping import drop_empty
from telehealth.fhir.mapping_consults import LOINC, TELEHEALTH_CS, ref
from telehealth.fhir.mapping_record import ACT_CODE
from telehealth.fhir.search_params import Resource
from telehealth.fhir.store import instant

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PURPOSE_CS = f"{TELEHEALTH_CS}/consent-purpose"

# purpose -> (scope, consentaction code, Vietnamese label)
_PURPOSES = {
    ConsentPurpose.REMOTE_CONSULTATION: ("treatment", "use", "Đồng ý hội chẩn, tư vấn từ xa"),
    ConsentPurpose.SESSION_RECORDING: (
        "patient-privacy",
        "collect",
        "Đồng ý ghi hình buổi hội chẩn",
    ),
    ConsentPurpose.RECORD_SHARING: (
        "patient-privacy",
        "disclose",
        "Đồng ý chia sẻ hồ sơ với cơ sở hội chẩn",
    ),
}
_METHODS = {
    ConsentMethod.SIGNED_PAPER: "Giấy đồng ý có chữ ký (bản quét)",
    ConsentMethod.SPOKEN_BEFORE_WITNESS: "Đồng ý bằng lời trước người làm chứng",
    ConsentMethod.ELECTRONIC: "Đồng ý điện tử",
}


def _concept(system: str, code: str, display: str | None = None) -> Resource:
    return {"coding": [drop_empty({"system": system, "code": code, "display": display})]}


def _source(consent: PatientConsent) -> Resource:
    if consent.scan_attachment_id is not None:
        return {"sourceReference": ref("DocumentReference", consent.scan_attachment_id)}
    title = _METHODS[consent.method]
    if consent.witness_name:
        title = f"{title}: {consent.witness_name}"
    return {"sourceAttachment": {"contentType": "text/plain", "title": title}}


def consent_resource(consent: PatientConsent, session: Session) -> Resource:
    scope, action, label = _PURPOSES[consent.purpose]
    patient = session.get(Patient, consent.patient_id)
    return drop_empty(
        {
            "resourceType": "Consent",
            "id": str(consent.id),
            "status": "active" if consent.active else "inactive",
            "scope": _concept(CONSENT_SCOPE, scope),
            "category": [_concept(LOINC, "59284-0", "Patient Consent")],
            "patient": ref("Patient", consent.patient_id),
            "dateTime": instant(consent.recorded_at),
            "performer": [ref("Patient", consent.patient_id)],
            "organization": [ref("Organization", patient.organization_id)] if patient else [],
            **_source(consent),
            "policyRule": _concept(ACT_CODE, "OPTIN"),
            "provision": drop_empty(
                {
                    "type": "permit",
                    "period": drop_empty(
                        {
                            "start": instant(consent.recorded_at),
                            "end": instant(consent.withdrawn_at) if consent.withdrawn_at else None,
                        }
                    ),
                    "action": [_concept(CONSENT_ACTION, action)],
                    "purpose": [{"system": ACT_REASON, "code": "TREAT", "display": "treatment"}],
                    "code": [_concept(PURPOSE_CS, consent.purpose.value, label)],
                    "data": [
                        {
                            "meaning": "related",
                            "reference": ref("ServiceRequest", consent.request_id),
                        }
                    ]
                    if consent.request_id
                    else [],
                }
            ),
        }
    )
