"""Request and response models of the staff capability (they also make its OpenAPI part)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from livedesk.kit.http import ApiModel
from livedesk.models import Role


class LoginRequest(ApiModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    team_id: uuid.UUID | None
    csrf_token: str
