"""The service's one exception tree.

Services raise these; the web edge turns them into problem+json under ``/api`` and
OperationOutcome under ``/fhir`` (see ``telehealth.http.problems``). Each class fixes its HTTP
status, so a service never thinks about HTTP::

    TelehealthError                 500  something we did not foresee
    ├── BadRequest                  400  the request cannot be understood (e.g. an unknown
    │                                    FHIR search parameter)
    ├── NotAuthenticated            401  no credentials, bad or expired token
    │   └── AccountLocked           401  too many failed logins from this address; retry later
    ├── PermissionDenied            403  authenticated, but not allowed to do this
    │   ├── PasswordChangeRequired  403  someone else chose the password: change it first
    │   └── TwoFactorEnrolmentRequired 403  the role needs a second factor: enrol one first
    ├── NotFound                    404  no such thing, or not one the caller may know of
    │   └── Gone                    410  it existed but was deleted (its history is kept)
    ├── Conflict                    409  the current state forbids the change
    │   ├── DuplicateEntry          409  a unique identifier is already taken
    │   └── InvalidTransition       409  a state machine refused an action
    ├── PreconditionFailed          412  If-Match names a stale version
    └── InvalidInput                422  the request is well-formed but its values are wrong
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: where it is (dotted path) and what a person should fix."""

    field: str
    message: str


class TelehealthError(Exception):
    status_code = 500
    title = "Internal error"

    def __init__(self, detail: str, *, problems: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problems = problems


class BadRequest(TelehealthError):
    status_code = 400
    title = "Bad request"


class NotAuthenticated(TelehealthError):
    status_code = 401
    title = "Authentication required"


class AccountLocked(NotAuthenticated):
    """Said alike for every name, existing or not: it tells nothing of accounts."""

    title = "Too many failed logins"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class PermissionDenied(TelehealthError):
    status_code = 403
    title = "Forbidden"


class PasswordChangeRequired(PermissionDenied):
    """The session may only change the password (``CHANGE_PASSWORD_PATHS`` name where)."""

    title = "Password change required"


class TwoFactorEnrolmentRequired(PermissionDenied):
    """The session may only enrol a second factor (``ENROL_TWO_FACTOR_PATHS`` name where)."""

    title = "Two-factor enrolment required"


class NotFound(TelehealthError):
    status_code = 404
    title = "Not found"


class Gone(NotFound):
    status_code = 410
    title = "Gone"


class Conflict(TelehealthError):
    status_code = 409
    title = "Conflict"


class DuplicateEntry(Conflict):
    title = "Already exists"


class InvalidTransition(Conflict):
    title = "Action not allowed in the current state"


class PreconditionFailed(TelehealthError):
    status_code = 412
    title = "Precondition failed"


class InvalidInput(TelehealthError):
    status_code = 422
    title = "Invalid input"

    @classmethod
    def for_field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", problems=(FieldProblem(field, message),))


class Unavailable(TelehealthError):
    status_code = 503
    title = "Service unavailable"
