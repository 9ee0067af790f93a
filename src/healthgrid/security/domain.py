"""Pure rules of security: roles and what they may do, scopes, the password policy, the
resident ID number (GB 11643), masking, and the audit record's canonical hash. No I/O.

Sources: ../shared/specs/domain-rules.md §10.1 (ID number), §10.4 (MLPS 2.0 level 3
controls and the platform controls: purpose-based access, masking, audit events).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from ..errors import Invalid


class Role(StrEnum):
    RESIDENT = "resident"
    CLINICIAN = "clinician"
    NURSE = "nurse"
    FACILITY_ADMIN = "facility_admin"
    CDC_EPIDEMIOLOGIST = "cdc_epidemiologist"
    MCH_MANAGER = "mch_manager"
    INSURER = "insurer"
    COMMISSION_ADMIN = "commission_admin"
    AUDITOR = "auditor"
    SYSTEM_ADMIN = "system_admin"
    MPI_STEWARD = "mpi_steward"


ROLE_LABELS = {
    Role.RESIDENT: ("居民", "Resident"),
    Role.CLINICIAN: ("医生", "Clinician"),
    Role.NURSE: ("护士", "Nurse"),
    Role.FACILITY_ADMIN: ("机构管理员", "Facility administrator"),
    Role.CDC_EPIDEMIOLOGIST: ("疾控流行病学人员", "CDC epidemiologist"),
    Role.MCH_MANAGER: ("妇幼保健管理员", "Maternal and child health manager"),
    Role.INSURER: ("医保经办", "Insurer"),
    Role.COMMISSION_ADMIN: ("卫健委管理员", "Health commission administrator"),
    Role.AUDITOR: ("审计员", "Auditor"),
    Role.SYSTEM_ADMIN: ("系统管理员", "System administrator"),
    Role.MPI_STEWARD: ("患者主索引管理员", "Patient-index steward"),
}


class Perm(StrEnum):
    REGISTRY_READ = "registry.read"
    FACILITY_WRITE = "registry.facility.write"  # departments, services, equipment, staff sites
    REGION_WRITE = "registry.region.write"  # divisions, organisations, alliances, key specialties
    PATIENT_READ = "patient.read"
    PATIENT_WRITE = "patient.write"
    POPULATION_READ = "phi.population"  # public-health tasks over a population in scope
    BREAK_GLASS = "phi.break_glass"
    PII_UNMASKED = "pii.unmasked"  # see full ID numbers and phones
    PATIENT_MERGE = "patient.merge"  # decide the match review queue: merge and unmerge records
    SCHEDULE_MANAGE = "schedule.manage"  # schedules, session templates, holidays, stop-clinic notices
    APPOINTMENT_BOOK = "appointment.book"  # book, cancel, check in for patients; day lists
    REFERRAL_WRITE = "referral.write"  # send, accept, refer back and follow up referrals (双向转诊)
    REFERRAL_STATS = "referral.stats"  # referral measures of the facilities in scope (no patient data)
    CASE_REPORT = "surveillance.report"  # fill, correct and delete notifiable-disease report cards (传染病报告卡)
    CASE_REVIEW = "surveillance.review"  # county CDC review of the cards in scope; overdue lists
    SIGNAL_MANAGE = "surveillance.signal"  # verify and investigate early-warning signals; warning products
    FEED_SUBMIT = "surveillance.feed"  # send syndromic, pharmacy, school and laboratory daily counts
    SURVEILLANCE_STATS = "surveillance.stats"  # the CDC dashboard: counts, curves, map, response KPIs
    RESULT_ORDER = "results.order"  # ask for recognisable prior results when ordering a test; record the decision
    RESULT_SUBMIT = "results.submit"  # send lab and imaging results (LIS/RIS/PACS feeds: FHIR, HL7 v2)
    RESULT_REFERENCE = "results.reference"  # the recognised-item lists, EQA results and local code maps
    RESULT_STATS = "results.stats"  # mutual-recognition measures of the facilities in scope (no patient data)
    SELF_RECORD = "self.record"  # a resident's own record and access log
    USER_READ = "user.read"
    USER_MANAGE = "user.manage"
    AUDIT_READ = "audit.read"
    AUDIT_REVIEW = "audit.review"  # review break-the-glass accesses


# Least privilege per role (GB/T 22239-2019 访问控制), with the three administrator duties
# kept apart (三权分立): system_admin manages accounts but cannot read the audit trail;
# auditor reads and reviews the trail but changes nothing else.
ROLE_PERMS: dict[Role, frozenset[Perm]] = {
    Role.RESIDENT: frozenset({Perm.REGISTRY_READ, Perm.SELF_RECORD}),
    Role.CLINICIAN: frozenset({Perm.REGISTRY_READ, Perm.PATIENT_READ, Perm.PATIENT_WRITE,
                               Perm.BREAK_GLASS, Perm.PII_UNMASKED, Perm.APPOINTMENT_BOOK,
                               Perm.REFERRAL_WRITE, Perm.CASE_REPORT, Perm.RESULT_ORDER}),
    # Nurses staff the registration windows, the phone line and the exam booking centre.
    # They also staff the referral desk (转诊办) that receives and schedules referrals.
    Role.NURSE: frozenset({Perm.REGISTRY_READ, Perm.PATIENT_READ, Perm.PATIENT_WRITE, Perm.APPOINTMENT_BOOK,
                           Perm.REFERRAL_WRITE}),
    # A facility's data manager sends its fever-clinic / ED, pharmacy, school or lab counts.
    # ... and its lab / imaging results through the LIS, RIS or PACS interface (an API token),
    # and its local item codes; it sees its own recognition measures.
    Role.FACILITY_ADMIN: frozenset({Perm.REGISTRY_READ, Perm.FACILITY_WRITE, Perm.USER_READ,
                                    Perm.SCHEDULE_MANAGE, Perm.REFERRAL_STATS, Perm.FEED_SUBMIT,
                                    Perm.RESULT_SUBMIT, Perm.RESULT_REFERENCE, Perm.RESULT_STATS}),
    # The county CDC (疾控) reviews report cards, answers signals and watches the dashboard
    # (传染病信息报告管理规范; 传染病疫情预警管理办法(试行) 2025).
    Role.CDC_EPIDEMIOLOGIST: frozenset({Perm.REGISTRY_READ, Perm.PATIENT_READ, Perm.POPULATION_READ,
                                        Perm.PII_UNMASKED, Perm.CASE_REPORT, Perm.CASE_REVIEW,
                                        Perm.SIGNAL_MANAGE, Perm.FEED_SUBMIT, Perm.SURVEILLANCE_STATS}),
    Role.MCH_MANAGER: frozenset({Perm.REGISTRY_READ, Perm.PATIENT_READ, Perm.POPULATION_READ}),
    Role.INSURER: frozenset({Perm.REGISTRY_READ, Perm.PATIENT_READ}),
    # The health commission / county bureau (卫健委/卫健局) watches the referral measures.
    Role.COMMISSION_ADMIN: frozenset({Perm.REGISTRY_READ, Perm.FACILITY_WRITE, Perm.REGION_WRITE,
                                      Perm.USER_READ, Perm.REFERRAL_STATS, Perm.SURVEILLANCE_STATS,
                                      Perm.RESULT_REFERENCE, Perm.RESULT_STATS}),
    Role.AUDITOR: frozenset({Perm.REGISTRY_READ, Perm.AUDIT_READ, Perm.AUDIT_REVIEW}),
    Role.SYSTEM_ADMIN: frozenset({Perm.REGISTRY_READ, Perm.USER_READ, Perm.USER_MANAGE,
                                  Perm.REGION_WRITE, Perm.FACILITY_WRITE}),
    # The data steward of the master patient index (WS/T 448-2014 EMPI): compares the records
    # of a pair side by side, so it sees them unmasked, and merges or keeps them apart.
    Role.MPI_STEWARD: frozenset({Perm.REGISTRY_READ, Perm.PATIENT_MERGE, Perm.PII_UNMASKED}),
}

# MLPS level 3 asks for two factors, one cryptographic, for administrators (GB/T 22239-2019
# 身份鉴别); the issue adds auditors.
MFA_REQUIRED = frozenset({Role.FACILITY_ADMIN, Role.COMMISSION_ADMIN, Role.AUDITOR, Role.SYSTEM_ADMIN})

# HL7 v3 PurposeOfUse codes, the default per role; a request may state another.
PURPOSES = {
    "TREAT": ("诊疗", "Treatment"),
    "ETREAT": ("紧急诊疗", "Emergency treatment"),
    "PUBHLTH": ("公共卫生", "Public health"),
    "HPAYMT": ("医保支付", "Payment"),
    "HOPERAT": ("机构运营", "Operations"),
    "HSYSADMIN": ("系统管理", "System administration"),
    "PATRQT": ("本人查询", "Patient request"),
    "HCOMPL": ("合规审计", "Compliance"),
}
DEFAULT_PURPOSE = {
    Role.RESIDENT: "PATRQT", Role.CLINICIAN: "TREAT", Role.NURSE: "TREAT",
    Role.FACILITY_ADMIN: "HOPERAT", Role.CDC_EPIDEMIOLOGIST: "PUBHLTH", Role.MCH_MANAGER: "PUBHLTH",
    Role.INSURER: "HPAYMT", Role.COMMISSION_ADMIN: "HOPERAT", Role.AUDITOR: "HCOMPL",
    Role.SYSTEM_ADMIN: "HSYSADMIN", Role.MPI_STEWARD: "HOPERAT",
}


class ScopeKind(StrEnum):
    ORGANIZATION = "organization"  # one facility
    DIVISION = "division"  # every facility in the subtree of a division
    ALLIANCE = "alliance"  # the lead and members of an alliance (医共体, 医联体 …)
    SELF = "self"  # a resident's own record


SCOPE_LABELS = {
    ScopeKind.ORGANIZATION: ("机构", "Organisation"),
    ScopeKind.DIVISION: ("行政区划", "Division"),
    ScopeKind.ALLIANCE: ("医联体/医共体", "Alliance"),
    ScopeKind.SELF: ("本人", "Self"),
}


def check_grant(role: Role, scope_kind: ScopeKind) -> None:
    if (role is Role.RESIDENT) != (scope_kind is ScopeKind.SELF):
        raise Invalid("SEC-040", "the resident role is granted on scope 'self', and only it"
                      f" (got role {role} on scope {scope_kind})")


@dataclass(frozen=True)
class Grant:
    role: Role
    scope_kind: ScopeKind
    scope_id: int | None  # organisation, division or alliance id; None for self
    id: int | None = None

    @property
    def perms(self) -> frozenset[Perm]:
        return ROLE_PERMS[self.role]


@dataclass(frozen=True)
class OrgPlace:
    """Where an organisation sits: itself, its division and that division's ancestors, and
    the alliances it belongs to. Enough to decide any scope question about it."""

    org_id: int
    division_ids: frozenset[int]
    alliance_ids: frozenset[int] = frozenset()


def grant_covers(grant: Grant, place: OrgPlace) -> bool:
    if grant.scope_kind is ScopeKind.ORGANIZATION:
        return grant.scope_id == place.org_id
    if grant.scope_kind is ScopeKind.DIVISION:
        return grant.scope_id in place.division_ids
    if grant.scope_kind is ScopeKind.ALLIANCE:
        return grant.scope_id in place.alliance_ids
    return False


@dataclass(frozen=True)
class Actor:
    """Who is acting, with what rights, from where and why. Every service function takes
    one; the audit trail records it."""

    user_id: int | None
    username: str
    grants: tuple[Grant, ...] = ()
    surface: str = "api"  # api | fhir | web | cli | system
    client: str | None = None  # remote address
    purpose: str | None = None
    break_glass: str | None = None  # the stated reason, when breaking the glass
    practitioner_id: int | None = None
    person_key: str | None = None  # blind index of the user's own ID number (residents)
    token_perms: frozenset[Perm] | None = None  # an API token limited to these
    mfa: bool = False
    system: bool = False  # the platform itself (synth, migrations, jobs)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def system_actor(cls, name: str, surface: str = "system") -> Actor:
        return cls(user_id=None, username=f"system:{name}", surface=surface, system=True, mfa=True)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(g.role for g in self.grants)

    def perms(self) -> frozenset[Perm]:
        if self.system:
            return frozenset(Perm)
        mine = frozenset().union(*(g.perms for g in self.grants)) if self.grants else frozenset()
        return mine & self.token_perms if self.token_perms is not None else mine

    def can(self, perm: Perm) -> bool:
        return perm in self.perms()

    def grants_with(self, perm: Perm) -> list[Grant]:
        if self.token_perms is not None and perm not in self.token_perms:
            return []
        return [g for g in self.grants if perm in g.perms]

    @property
    def effective_purpose(self) -> str:
        if self.break_glass:
            return "ETREAT"
        if self.purpose:
            return self.purpose
        for g in self.grants:
            return DEFAULT_PURPOSE[g.role]
        return "HSYSADMIN" if self.system else "PATRQT"

    def needs_mfa(self) -> bool:
        return bool(self.roles & MFA_REQUIRED)


# -- passwords (GB/T 22239-2019 身份鉴别: complexity, periodic change) ------------------

PASSWORD_CLASSES = (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]")


def check_password(password: str, *, username: str, min_length: int) -> None:
    if len(password) < min_length:
        raise Invalid("SEC-020", f"password: at least {min_length} characters are required")
    if len(password) > 256:
        raise Invalid("SEC-020", "password: at most 256 characters")
    classes = sum(1 for pattern in PASSWORD_CLASSES if re.search(pattern, password))
    if classes < 3:
        raise Invalid("SEC-021", "password: use at least three of lower case, upper case, digits"
                      " and symbols")
    if username and username.lower() in password.lower():
        raise Invalid("SEC-022", "password: must not contain the user name")


USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{1,59}$")


def check_username(username: str) -> None:
    if not USERNAME_RE.match(username):
        raise Invalid("SEC-023", "username: 2–60 letters, digits, '.', '_' or '-', starting with a"
                      f" letter or digit (got {username!r})")


# -- resident ID number (GB 11643-1999), §10.1 ------------------------------------------

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
# First two digits: provinces of GB/T 2260, plus 81–83 (HK, Macao, Taiwan residence permits)
# and 9 (foreign permanent residents, 2023 card).
PROVINCE_PREFIXES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "81", "82", "83"})


def id_check_digit(first17: str) -> str:
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: date
    sex: str  # "M" | "F"


def parse_resident_id(raw: str, *, today: date | None = None, field_name: str = "id_number") -> ResidentId:
    """Validate and normalise an 18-digit ID number; a 15-digit legacy number is converted
    (insert "19", compute the check digit). Raises Invalid with the reason."""
    s = (raw or "").strip().upper()
    if len(s) == 15 and s.isdigit():
        s17 = s[:6] + "19" + s[6:]
        s = s17 + id_check_digit(s17)
    if len(s) != 18 or not s[:17].isdigit() or not (s[17].isdigit() or s[17] == "X"):
        raise Invalid("SEC-030", f"{field_name}: an ID number has 18 characters, 17 digits then a"
                      " digit or X (or 15 digits for a legacy number)")
    if s[:2] not in PROVINCE_PREFIXES and not s.startswith("9"):
        raise Invalid("SEC-031", f"{field_name}: the first two digits must be a province code")
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise Invalid("SEC-032", f"{field_name}: digits 7–14 are not a valid birth date") from None
    if born > (today or date.today()) or born.year < 1890:
        raise Invalid("SEC-032", f"{field_name}: birth date {born.isoformat()} is impossible")
    if id_check_digit(s[:17]) != s[17]:
        raise Invalid("SEC-033", f"{field_name}: the check digit does not match (GB 11643)")
    return ResidentId(s, born, "M" if int(s[16]) % 2 else "F")


# -- masking (§10.4: masking in UI, exports and logs) -----------------------------------

def mask_id(number: str | None) -> str | None:
    if not number:
        return number
    return number[:6] + "*" * (len(number) - 10) + number[-4:] if len(number) > 10 else "*" * len(number)


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = phone.strip()
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 11 else "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    if name.isascii():
        return name[0] + "*" * (len(name) - 1)
    # 张三 -> 张*, 欧阳明华 -> 欧阳** : a two-character surname keeps both (common compound surnames)
    keep = 2 if len(name) >= 4 else 1
    return name[:keep] + "*" * (len(name) - keep)


# -- audit -------------------------------------------------------------------------------

class AuditAction(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    VIEW = "view"
    SEARCH = "search"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"
    PRINT = "print"
    PERMISSION_CHANGE = "permission_change"
    TOKEN = "token"
    MFA = "mfa"
    KEY_ROTATION = "key_rotation"
    RETENTION = "retention"
    BREAK_GLASS_REVIEW = "break_glass_review"
    MERGE = "merge"
    UNMERGE = "unmerge"


ACTION_LABELS = {
    AuditAction.LOGIN: ("登录", "Log-in"), AuditAction.LOGIN_FAILED: ("登录失败", "Failed log-in"),
    AuditAction.LOGOUT: ("退出", "Log-out"), AuditAction.VIEW: ("查看", "View"),
    AuditAction.SEARCH: ("检索", "Search"), AuditAction.CREATE: ("新建", "Create"),
    AuditAction.UPDATE: ("修改", "Update"), AuditAction.DELETE: ("删除", "Delete"),
    AuditAction.EXPORT: ("导出", "Export"), AuditAction.PRINT: ("打印", "Print"),
    AuditAction.PERMISSION_CHANGE: ("权限变更", "Permission change"),
    AuditAction.TOKEN: ("令牌", "API token"), AuditAction.MFA: ("双因素", "Second factor"),
    AuditAction.KEY_ROTATION: ("密钥轮换", "Key rotation"),
    AuditAction.RETENTION: ("过期清理", "Retention purge"),
    AuditAction.BREAK_GLASS_REVIEW: ("紧急访问复核", "Break-glass review"),
    AuditAction.MERGE: ("合并", "Merge"), AuditAction.UNMERGE: ("撤销合并", "Unmerge"),
}

GENESIS_HASH = "0" * 64
AUDIT_FIELDS = ("at", "user_id", "username", "roles", "surface", "client", "purpose", "action",
                "resource_type", "resource_id", "org_id", "patient_id", "person_key", "outcome", "reason",
                "break_glass", "detail")


def audit_mac(key: bytes, record: dict[str, Any]) -> str:
    """HMAC-SHA256 of a row's canonical JSON: written with the row, in its own transaction,
    so a changed row is detected from the moment it exists; without the key nobody can
    compute a new one to cover a change up."""
    canonical = json.dumps({k: record.get(k) for k in AUDIT_FIELDS}, sort_keys=True,
                           ensure_ascii=False, separators=(",", ":"), default=str)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def chain_hash(key: bytes, prev_hash: str, seq: int, mac: str) -> str:
    """The chain link of row ``seq``: deleting, inserting or reordering rows breaks every
    link after the change."""
    return hmac.new(key, f"{prev_hash}|{seq}|{mac}".encode(), hashlib.sha256).hexdigest()
