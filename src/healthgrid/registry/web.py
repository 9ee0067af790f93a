"""Web pages of the registry: the region browser.

Divisions from the region down to villages with the facilities of each subtree, facility
pages, alliances (医联体) and a search by name. Each handler parses its parameters, makes
one ``registry.queries`` call and renders; unknown codes and ids raise the queries' coded
``NotFound``, which the web platform turns into its HTML error page. Labels come from the
``(zh, en)`` tables of ``registry.domain`` and the messages added below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from ..http import SessionDep
from ..security.domain import Perm
from ..security.http import require
from ..web import HomePanel, NavItem, Pager, add_home_panel, add_messages, add_nav_item, page_language, pick
from ..web import render as render_page
from . import domain as d
from . import queries as q

TEMPLATES = Path(__file__).parent / "templates"
router = APIRouter(prefix="/registry", include_in_schema=False,
                   dependencies=[Depends(require(Perm.REGISTRY_READ))])

PageNo = Annotated[int, Query(ge=1, le=100_000)]

MESSAGES: dict[str, tuple[str, str]] = {
    "registry.nav.divisions": ("地区与机构", "Regions & facilities"),
    "registry.nav.alliances": ("医联体", "Alliances"),
    "registry.nav.search": ("机构查询", "Find a facility"),
    "registry.summary.title": ("区域概况", "The region at a glance"),
    "registry.summary.divisions": ("行政区划", "Divisions"),
    "registry.summary.organizations": ("医疗卫生机构", "Health facilities"),
    "registry.summary.alliances": ("医联体", "Alliances"),
    "registry.summary.practitioners": ("医务人员", "Practitioners"),
    "registry.summary.departments": ("科室", "Departments"),
    "registry.summary.practice_sites": ("执业登记", "Practice registrations"),
    "registry.region": ("全区域", "Whole region"),
    "registry.top_divisions": ("区域内行政区划", "Divisions of the region"),
    "registry.children": ("下级行政区划", "Subdivisions"),
    "registry.no_children": ("没有下级行政区划。", "No subdivisions."),
    "registry.counts": ("各级机构数量", "Facilities by level"),
    "registry.orgs_in": ("辖区内机构", "Facilities in this area"),
    "registry.no_orgs": ("没有符合条件的机构。", "No facility matches."),
    "registry.division.level": ("区划级别", "Division level"),
    "registry.division.code": ("区划代码", "Division code"),
    "registry.filter.level": ("机构级别", "Facility level"),
    "registry.filter.type": ("机构类型", "Facility type"),
    "registry.col.name": ("机构名称", "Facility"),
    "registry.col.level": ("级别", "Level"),
    "registry.col.type": ("类型", "Type"),
    "registry.col.grade": ("医院等级", "Hospital grade"),
    "registry.col.division": ("所在地区", "Location"),
    "registry.col.code": ("机构代码", "Facility code"),
    "registry.org.overview": ("基本信息", "Overview"),
    "registry.org.address": ("地址", "Address"),
    "registry.org.phone": ("联系电话", "Phone"),
    "registry.org.parent": ("上级机构", "Parent facility"),
    "registry.org.status": ("状态", "Status"),
    "registry.org.active": ("正常运行", "In service"),
    "registry.org.inactive": ("已停用", "Closed"),
    "registry.org.updated": ("最近更新", "Last updated"),
    "registry.departments": ("科室设置", "Departments"),
    "registry.no_departments": ("未登记科室。", "No departments registered."),
    "registry.services": ("服务项目", "Services"),
    "registry.no_services": ("未登记服务项目。", "No services registered."),
    "registry.equipment": ("主要设备", "Major equipment"),
    "registry.equipment.kind": ("设备", "Equipment"),
    "registry.equipment.model": ("型号", "Model"),
    "registry.equipment.quantity": ("数量", "Quantity"),
    "registry.no_equipment": ("未登记设备。", "No equipment registered."),
    "registry.staff": ("执业人员", "Practitioners"),
    "registry.staff.name": ("姓名", "Name"),
    "registry.staff.title": ("职称", "Title"),
    "registry.staff.specialty": ("专业", "Specialty"),
    "registry.staff.department": ("执业科室", "Department"),
    "registry.department": ("所属科室", "Department"),
    "registry.staff.site": ("执业类型", "Practice type"),
    "registry.staff.primary": ("主要执业机构", "Primary site"),
    "registry.staff.multi": ("多点执业", "Multi-site practice"),
    "registry.staff.shown": ("仅列出前 {shown} 人，共 {total} 人。", "Showing the first {shown} of {total}."),
    "registry.no_staff": ("未登记执业人员。", "No practitioners registered."),
    "registry.memberships": ("所属医联体", "Alliance memberships"),
    "registry.role": ("角色", "Role"),
    "registry.role.lead": ("牵头单位", "Lead"),
    "registry.role.member": ("成员单位", "Member"),
    "registry.no_memberships": ("未加入医联体。", "Not a member of any alliance."),
    "registry.key_specialties": ("重点专科", "Key specialties"),
    "registry.key_specialty.level": ("级别", "Level"),
    "registry.key_specialty.year": ("确定年度", "Year designated"),
    "registry.no_key_specialties": ("暂无重点专科。", "No key specialties."),
    "registry.alliances.title": ("医联体", "Medical alliances"),
    "registry.alliances.lead": ("医疗联合体：城市医疗集团、县域医共体、专科联盟和远程医疗协作网。",
                                "Medical alliances: urban groups, county medical communities, "
                                "specialty alliances and telemedicine networks."),
    "registry.alliance.kind": ("联合体类型", "Alliance type"),
    "registry.alliance.code": ("编码", "Code"),
    "registry.alliance.lead_org": ("牵头机构", "Lead facility"),
    "registry.alliance.specialty": ("专科", "Specialty"),
    "registry.alliance.members": ("成员机构", "Member facilities"),
    "registry.alliance.member_count": ("共 {n} 家机构", "{n} facilities"),
    "registry.alliance.joined": ("加入日期", "Joined"),
    "registry.no_alliances": ("没有符合条件的医联体。", "No alliance matches."),
    "registry.search.title": ("机构查询", "Find a facility"),
    "registry.search.hint": ("按名称查询区域内的医疗卫生机构。",
                             "Search the region's health facilities by name."),
    "registry.search.label": ("机构名称", "Facility name"),
    "registry.search.placeholder": ("输入名称的一部分，如“人民医院”", "Part of the name, e.g. 人民医院"),
    "registry.search.results": ("名称包含“{q}”的机构", "Facilities whose name contains “{q}”"),
    "error.REG-001": ("没有这个行政区划代码。", "There is no division with this code."),
    "error.REG-011": ("机构级别不正确。", "Unknown facility level."),
    "error.REG-013": ("没有这个医疗卫生机构。", "There is no such facility."),
    "error.REG-015": ("机构类型不正确。", "Unknown facility type."),
    "error.REG-040": ("医联体类型不正确。", "Unknown alliance type."),
    "error.REG-042": ("没有这个医联体。", "There is no such alliance."),
}


@dataclass(frozen=True)
class Labels:
    """Domain codes as text in the page's language; an unknown code shows as itself."""

    lang: str

    def _of(self, table: dict, code: str | None) -> str:
        return pick(table.get(code), self.lang, code or "")

    def division_level(self, code: str) -> str:
        return self._of(d.DIVISION_LABELS, code)

    def org_level(self, code: str) -> str:
        return self._of(d.ORG_LEVEL_LABELS, code)

    def org_type(self, code: str) -> str:
        return self._of(d.ORG_TYPE_LABELS, code)

    def grade(self, org: Any) -> str:
        return d.grade_label(org.grade_level, org.grade_class, self.lang)

    def alliance_kind(self, code: str) -> str:
        return self._of(d.ALLIANCE_LABELS, code)

    def department(self, code: str | None) -> str:
        return self._of(d.DEPARTMENTS, code)

    def is_custom_department(self, dept: Any) -> bool:
        """A department named other than its catalogue name (e.g. 心内一科) shows that name too."""
        return dept.name != pick(d.DEPARTMENTS.get(dept.code), "zh")

    def title(self, code: str) -> str:
        return self._of(d.PRACTITIONER_TITLES, code)

    def equipment(self, code: str) -> str:
        return self._of(d.EQUIPMENT_KINDS, code)

    def service(self, code: str) -> str:
        return self._of(d.SERVICE_KINDS, code)

    def specialty_level(self, code: str) -> str:
        return self._of(d.SPECIALTY_LEVEL_LABELS, code)


def _render(request: Request, template: str, **context: Any) -> HTMLResponse:
    return render_page(request, template, {"rl": Labels(page_language(request)), **context})


def _choice(value: str, kind: type[StrEnum], code: str, field: str) -> list[str] | None:
    """An optional filter from a <select>: "" means all, anything else must be a known code."""
    return [d.parse_enum(kind, value, code, field).value] if value else None


def _filter_options() -> dict[str, Any]:
    return {"level_options": list(d.OrgLevel)[::-1], "type_options": list(d.OrgType)}


@router.get("/divisions", response_class=HTMLResponse)
def region(request: Request, session: SessionDep, level: str = "",
           org_type: Annotated[str, Query(alias="type")] = "", page: PageNo = 1) -> HTMLResponse:
    return _division_page(request, session, None, level, org_type, page)


@router.get("/divisions/{code}", response_class=HTMLResponse)
def division(request: Request, session: SessionDep, code: str, level: str = "",
             org_type: Annotated[str, Query(alias="type")] = "", page: PageNo = 1) -> HTMLResponse:
    return _division_page(request, session, code, level, org_type, page)


def _division_page(request: Request, session: Session, code: str | None, level: str, org_type: str,
                   page: int) -> HTMLResponse:
    pager = Pager(page)
    view = q.division_overview(
        session, code, levels=_choice(level, d.OrgLevel, "REG-011", "level"),
        types=_choice(org_type, d.OrgType, "REG-015", "type"), offset=pager.offset, limit=pager.size)
    return _render(request, "registry/division.html", view=view, level=level, org_type=org_type,
                   pager=pager.with_total(view.organizations.total), **_filter_options())


@router.get("/organizations/{org_id}", response_class=HTMLResponse)
def organization(request: Request, session: SessionDep, org_id: int) -> HTMLResponse:
    return _render(request, "registry/organization.html", detail=q.organization_detail(session, org_id))


@router.get("/alliances", response_class=HTMLResponse)
def alliances(request: Request, session: SessionDep, kind: str = "", page: PageNo = 1) -> HTMLResponse:
    pager = Pager(page)
    kinds = _choice(kind, d.AllianceKind, "REG-040", "kind")
    found = q.search_alliances(session, kind=kinds[0] if kinds else None, offset=pager.offset,
                               limit=pager.size)
    return _render(request, "registry/alliances.html", alliances=found.items, kind=kind,
                   kind_options=list(d.AllianceKind), pager=pager.with_total(found.total))


@router.get("/alliances/{alliance_id}", response_class=HTMLResponse)
def alliance(request: Request, session: SessionDep, alliance_id: int) -> HTMLResponse:
    return _render(request, "registry/alliance.html", detail=q.alliance_detail(session, alliance_id))


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, session: SessionDep,
           text: Annotated[str, Query(alias="q", max_length=100)] = "", page: PageNo = 1) -> HTMLResponse:
    pager, text = Pager(page), text.strip()
    found = (q.search_organizations(session, q.OrgFilter(name=text), offset=pager.offset, limit=pager.size)
             if text else q.Page(0, []))
    return _render(request, "registry/search.html", q=text, results=found.items,
                   pager=pager.with_total(found.total))


def _home_data(session: Session) -> dict[str, Any]:
    # The home page is the platform's: it knows no registry labels, so the tables travel with the data.
    return {"summary": q.region_summary(session), "divisions": q.division_children(session, None),
            "division_labels": d.DIVISION_LABELS}


add_messages(MESSAGES)
add_nav_item(NavItem("registry.nav.divisions", "/registry/divisions", order=10, perm=Perm.REGISTRY_READ))
add_nav_item(NavItem("registry.nav.alliances", "/registry/alliances", order=20, perm=Perm.REGISTRY_READ))
add_nav_item(NavItem("registry.nav.search", "/registry/search", order=30, perm=Perm.REGISTRY_READ))
add_home_panel(HomePanel("registry", "registry/_home.html", load=_home_data, order=10,
                         perm=Perm.REGISTRY_READ))
