"""Fixtures of the web-platform tests: a very small region for the home page."""

from __future__ import annotations

import pytest

from healthgrid.registry import service
from healthgrid.security.domain import Actor

SYS = Actor.system_actor("tests")


@pytest.fixture
def small_region(session) -> None:
    service.create_division(session, SYS, code="530000", name="滇中省", level="province")
    service.create_division(session, SYS, code="530100", name="春城市", level="city", parent_code="530000")
    service.create_organization(session, SYS, code="WEBH-1", name="春城市人民医院", level="L3",
                                org_type="general_hospital", division_code="530100",
                                grade_level=3, grade_class="A")
