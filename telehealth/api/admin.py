"""/api routes for administrators: accounts, system clients and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from telehealth.api.directory import Limit, Offset
from telehealth.auth import service, two_factor
from telehealth.auth.audit import AuditQuery, search_audit
from telehealth.auth.models import AuditOutcome
from telehealth.auth.schemas import (
    AccountCreate,
    AccountRead,
    AccountUpdate,
    AuditEventRead,
    ClientCreate,
    ClientCreated,
)
from telehealth.http.dependencies import CallerDep, SessionDep, SettingsDep
from telehealth.http.guards import administrators


class AdminController(Controller):
    path = "/api/admin"
    tags = ["administration"]
    guards = [administrators]

    @post("/accounts")
    async def create_account(
        self,
        data: JSONBody[AccountCreate],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> AccountRead:
        account = await service.create_account(
            session, settings, caller, service.NewAccount(**data.model_dump())
        )
        return AccountRead.model_validate(account)

    @get("/accounts")
    async def list_accounts(
        self, session: SessionDep, caller: CallerDep, limit: Limit = 50, offset: Offset = 0
    ) -> list[AccountRead]:
        rows = await service.list_accounts(session, caller, limit=limit, offset=offset)
        with_code = await two_factor.enrolled_among(session, [row.id for row in rows])
        return [
            AccountRead.model_validate(r).model_copy(
                update={"two_factor_enrolled": r.id in with_code}
            )
            for r in rows
        ]

    @patch("/accounts/{account_id:uuid}")
    async def update_account(
        self,
        account_id: FromPath[uuid.UUID],
        data: JSONBody[AccountUpdate],
        session: SessionDep,
        caller: CallerDep,
        settings: SettingsDep,
    ) -> AccountRead:
        account = await service.update_account(
            session, settings, caller, account_id, **data.model_dump()
        )
        return AccountRead.model_validate(account)

    @post("/clients")
    async def create_client(
        self, data: JSONBody[ClientCreate], session: SessionDep, caller: CallerDep
    ) -> ClientCreated:
        client, secret = await service.create_client(session, caller, **data.model_dump())
        return ClientCreated(
            client_id=client.client_id, name=client.name, scopes=client.scopes, client_secret=secret
        )

    @get("/audit")
    async def audit(
        self,
        session: SessionDep,
        caller: CallerDep,
        actor_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        patient_id: FromQuery[uuid.UUID | None] = None,
        entity_type: Annotated[str | None, QueryParameter(max_length=40)] = None,
        action: Annotated[str | None, QueryParameter(max_length=32)] = None,
        outcome: FromQuery[AuditOutcome | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> list[AuditEventRead]:
        query = AuditQuery(
            actor_id=actor_id,
            patient_id=patient_id,
            entity_type=entity_type,
            action=action,
            outcome=outcome,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return [
            AuditEventRead.model_validate(e) for e in await search_audit(session, caller, query)
        ]
