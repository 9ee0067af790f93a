"""Security use cases on both databases: log-in, lock-out, second factor, tokens, scope
decisions, break the glass, the audit chain and personal data at rest."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import func, select, text, update
from tests.factories import SYS
from tests.security.conftest import ID_NUMBER, PASSWORD, actor_of

from healthgrid.errors import Forbidden, TooManyRequests, Unauthorized
from healthgrid.registry import service as registry
from healthgrid.registry.models import Department
from healthgrid.security import audit, keys, service, trail
from healthgrid.security.domain import AuditAction, Perm, Role
from healthgrid.security.models import AuditEvent, User
from healthgrid.security.pii import Keyring, keyring


def test_wrong_password_locks_the_account_after_the_threshold(session, world):
    for _ in range(5):
        with pytest.raises(Unauthorized) as err:
            service.authenticate(session, username="u-clinician", password="wrong-Passw0rd", client="10.0.0.1")
        assert err.value.code == "SEC-001"
    with pytest.raises(Forbidden) as err:
        service.authenticate(session, username="u-clinician", password=PASSWORD, client="10.0.0.1")
    assert err.value.code == "SEC-002"
    failures = session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "login_failed"))
    assert failures >= 5


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(session, world):
    with pytest.raises(Unauthorized) as err:
        service.authenticate(session, username="nobody", password=PASSWORD, client="10.0.0.2")
    assert err.value.code == "SEC-001"


def test_many_failures_from_one_address_are_rate_limited(session, world):
    for i in range(20):
        with pytest.raises(Unauthorized):
            service.authenticate(session, username=f"nobody{i}", password="x", client="10.9.9.9")
    with pytest.raises(TooManyRequests) as err:
        service.authenticate(session, username="u-nurse", password=PASSWORD, client="10.9.9.9")
    assert err.value.code == "SEC-004"
    assert service.authenticate(session, username="u-nurse", password=PASSWORD, client="10.0.0.3")


def test_second_factor_is_asked_for_and_a_code_is_good_once(session, world):
    result = service.authenticate(session, username="u-auditor", password=PASSWORD, client="10.0.0.4")
    assert result.needs_totp
    code = pyotp.TOTP(world.totp[Role.AUDITOR]).now()
    service.verify_second_factor(session, user_id=result.user.id, code=code, client="10.0.0.4")
    with pytest.raises(Unauthorized) as err:
        service.verify_second_factor(session, user_id=result.user.id, code=code, client="10.0.0.4")
    assert err.value.code == "SEC-005"


def test_admin_without_second_factor_is_refused_even_with_the_right_role(session, world):
    actor = actor_of(session, world, Role.SYSTEM_ADMIN)
    no_mfa = type(actor)(**{**actor.__dict__, "mfa": False})
    with pytest.raises(Forbidden) as err:
        service.list_users(session, no_mfa)
    assert err.value.code == "SEC-107"
    with pytest.raises(Forbidden) as err:
        service.change_password(session, no_mfa, old_password=PASSWORD, new_password="An0ther-Passw0rd!")
    assert err.value.code == "SEC-107"


def test_tokens_are_stored_hashed_and_can_be_revoked(session, world):
    new = service.create_token(session, SYS, user_id=world.users[Role.INSURER].id, name="his",
                               perms=["registry.read"])
    stored = session.scalars(select(text("token_hash")).select_from(text("sec_api_token"))).all()
    assert new.token not in stored
    user, perms = service.resolve_token(session, new.token)
    assert user.username == "u-insurer" and perms == frozenset({Perm.REGISTRY_READ})
    service.revoke_token(session, SYS, new.id)
    assert service.resolve_token(session, new.token) is None


def test_facility_admin_writes_only_in_their_own_facility(session, world):
    admin = actor_of(session, world, Role.FACILITY_ADMIN)
    registry.add_department(session, admin, org_id=world.region.county_hospital.id, code="04")
    before = session.scalar(select(func.count()).select_from(Department))
    with pytest.raises(Forbidden) as err:
        registry.add_department(session, admin, org_id=world.hosp_b.id, code="04")
    assert err.value.code == "SEC-103"
    assert session.scalar(select(func.count()).select_from(Department)) == before
    denied = session.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")).all()
    assert [(d.reason, d.org_id, d.username) for d in denied] == [("SEC-103", world.hosp_b.id, "u-facility_admin")]


def test_cross_county_user_records_are_not_readable(session, world):
    cdc_b = service.create_user(session, SYS, username="cdc-b", display_name="B", password=PASSWORD,
                                grants=[service.GrantSpec(Role.FACILITY_ADMIN, *_org(world.hosp_b))],
                                org_id=world.hosp_b.id)
    admin_a = actor_of(session, world, Role.FACILITY_ADMIN)
    with pytest.raises(Forbidden) as err:
        service.get_user(session, admin_a, cdc_b.id)
    assert err.value.code == "SEC-103"
    _, listed = service.list_users(session, admin_a)
    assert "cdc-b" not in {u.username for u in listed}
    assert "u-clinician" in {u.username for u in listed}


def _org(org):
    from healthgrid.security.domain import ScopeKind

    return ScopeKind.ORGANIZATION, org.id


def test_break_the_glass_allows_a_clinician_outside_the_relationship_and_is_flagged(session, world):
    from healthgrid.security import access

    doctor = actor_of(session, world, Role.CLINICIAN)
    with pytest.raises(Forbidden) as err:
        access.check(session, doctor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                     resource_id=42, patient_id=42)
    assert err.value.code == "SEC-104"
    with pytest.raises(Forbidden) as err:
        access.check(session, actor_of(session, world, Role.CLINICIAN, break_glass="急"), Perm.PATIENT_READ,
                     AuditAction.VIEW, resource_type="Patient", patient_id=42)
    assert err.value.code == "SEC-105"
    glass = actor_of(session, world, Role.CLINICIAN, break_glass="昏迷患者急诊抢救，需要查看既往病史")
    decided = access.check(session, glass, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                           resource_id=42, patient_id=42)
    assert decided.basis == "break_glass" and decided.flagged
    session.commit()
    flagged = session.scalars(select(AuditEvent).where(AuditEvent.break_glass.is_not(None))).one()
    assert flagged.purpose == "ETREAT" and flagged.patient_id == 42
    nurse = actor_of(session, world, Role.NURSE, break_glass="昏迷患者急诊抢救，需要查看既往病史")
    with pytest.raises(Forbidden):  # nurses have no break-glass permission
        access.check(session, nurse, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient", patient_id=42)
    auditor = actor_of(session, world, Role.AUDITOR)
    pending = trail.search(session, auditor, trail.AuditFilter(unreviewed_only=True))
    assert [e.id for e in pending.items] == [flagged.id]
    trail.review_break_glass(session, auditor, flagged.id, verdict="justified", note="核实为急诊")
    assert trail.search(session, auditor, trail.AuditFilter(unreviewed_only=True)).total == 0


def test_a_relationship_source_grants_access_without_breaking_the_glass(session, world):
    from healthgrid.security import access

    def referral_to_my_facility(_s, actor, patient_id):
        return "referral" if patient_id == 7 and actor.username == "u-clinician" else None

    access.register_relationship_source(referral_to_my_facility)
    try:
        doctor = actor_of(session, world, Role.CLINICIAN)
        assert access.check(session, doctor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                             patient_id=7).basis == "relationship:referral"
        with pytest.raises(Forbidden):
            access.check(session, doctor, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                         patient_id=8)
    finally:
        access.RELATIONSHIP_SOURCES.remove(referral_to_my_facility)


def test_resident_sees_who_looked_at_their_record(session, world):
    admin = actor_of(session, world, Role.SYSTEM_ADMIN)
    resident = world.users[Role.RESIDENT]
    view = service.get_user(session, admin, resident.id)
    assert view.id_number == "110105********002X"  # masked for an administrator
    me = actor_of(session, world, Role.RESIDENT)
    assert service.get_user(session, me, resident.id).id_number == ID_NUMBER
    log = trail.access_log_for_me(session, me)
    assert (log.items[0].username, log.items[0].action) == ("u-system_admin", "view")
    assert all(e.user_id != resident.id for e in log.items)


def test_audit_chain_verifies_and_detects_a_changed_or_deleted_row(session, world):
    assert audit.verify(session).ok
    first, second = session.scalars(select(AuditEvent).order_by(AuditEvent.seq).limit(2)).all()
    original = second.username
    session.execute(update(AuditEvent).where(AuditEvent.id == second.id).values(username="someone-else"))
    report = audit.verify(session)
    assert not report.ok and any(f"row {second.seq}: its content was changed" in p for p in report.problems)
    session.execute(update(AuditEvent).where(AuditEvent.id == second.id).values(username=original))
    assert audit.verify(session).ok
    session.delete(session.get(AuditEvent, first.id))
    session.flush()
    report = audit.verify(session)
    assert not report.ok and any("missing" in p or "does not follow" in p for p in report.problems)


def test_no_plaintext_id_number_or_phone_in_any_table(session, world):
    session.flush()
    tables = session.execute(text(
        "SELECT name FROM sqlite_master WHERE type='table'" if session.bind.dialect.name == "sqlite" else
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
    assert "sec_user" in tables
    for table in tables:
        for row in session.execute(text(f'SELECT * FROM "{table}"')):
            blob = "|".join(str(v) for v in row)
            assert ID_NUMBER not in blob and ID_NUMBER[:17] not in blob, table
            assert "13812345678" not in blob, table
    stored = session.get(User, world.users[Role.RESIDENT].id)
    assert stored.id_number_enc.startswith("t1:")


def test_key_rotation_re_encrypts_every_value_and_old_keys_still_decrypt(session, world):
    old = keyring(session)
    new_ring = Keyring.from_strings({"t1": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
                                     "t2": "YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk="},
                                    "t2", "test-blind-index-key-0123456789abcdefghij")
    session.info["healthgrid_keyring"] = new_ring
    try:
        counts = keys.rotate(session, SYS)
        assert counts["sec_user.id_number_enc"] == 1 and counts["sec_user.totp_secret_enc"] == len(world.users)
        stored = session.get(User, world.users[Role.RESIDENT].id)
        session.refresh(stored)
        assert stored.id_number_enc.startswith("t2:")
        assert new_ring.decrypt(stored.id_number_enc, "id_number") == ID_NUMBER
        assert stored.id_number_bidx == old.blind_index(ID_NUMBER, "id_number")  # the index does not move
        assert keys.rotate(session, SYS)["sec_user.id_number_enc"] == 0
    finally:
        session.info["healthgrid_keyring"] = old


def test_an_idle_session_ends_and_a_live_one_is_kept(session, world):
    from datetime import timedelta

    from healthgrid.security.models import WebSession

    user = world.users[Role.CLINICIAN]
    token, csrf = service.start_session(session, user, client="10.0.0.5", mfa_passed=True)
    state = service.resolve_session(session, token)
    assert state is not None and state.csrf_token == csrf
    row = session.get(WebSession, state.session_id)
    row.last_seen_at = row.last_seen_at - timedelta(minutes=16)  # idle longer than 15 minutes
    session.flush()
    assert service.resolve_session(session, token) is None
    assert session.get(WebSession, state.session_id).ended_at is not None


def test_retention_purge_cuts_the_chain_from_its_start_and_it_still_verifies(session, world):
    from datetime import timedelta

    from healthgrid.errors import Invalid
    from healthgrid.security.models import AuditHead

    with pytest.raises(Invalid):
        audit.purge_expired(session, SYS, retention_days=30)  # below six months
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    old = rows[: len(rows) // 2]
    # Age the first half of the trail beyond the retention period (in place, as time would).
    for r in old:
        r.at = r.at - timedelta(days=400)
    session.flush()
    # The ageing changed the rows, so re-seal the chain as if they had been written then.
    _reseal(session)
    assert audit.verify(session).ok
    purged = audit.purge_expired(session, SYS, retention_days=183)
    assert purged == len(old)
    head = session.get(AuditHead, 1)
    assert head.anchor_seq == old[-1].seq
    report = audit.verify(session)
    assert report.ok, report.problems
    assert session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first().action == "retention"


def _reseal(session):
    """Recompute the seals over the rows as they are (test set-up only)."""
    from healthgrid.security.domain import AUDIT_FIELDS, GENESIS_HASH, audit_mac, chain_hash
    from healthgrid.security.models import AuditHead

    key = keyring(session).chain_key
    prev = GENESIS_HASH
    for ev in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
        ev.mac = audit_mac(key, {f: getattr(ev, f) for f in AUDIT_FIELDS})
        ev.prev_hash, ev.hash = prev, chain_hash(key, prev, ev.seq, ev.mac)
        prev = ev.hash
    session.get(AuditHead, 1).last_hash = prev
    session.flush()


@pytest.mark.pg
def test_concurrent_writers_append_one_unbroken_chain(engine):
    """Eight sessions auditing at once on PostgreSQL: the head row serialises the appends,
    every acknowledged row is there, and the chain verifies."""
    import threading

    from tests.conftest import SESSION_INFO

    from healthgrid.db import make_sessionmaker, transaction
    from healthgrid.security.domain import Actor

    maker = make_sessionmaker(engine, info=dict(SESSION_INFO))
    with maker() as s:
        start = s.scalar(select(func.max(AuditEvent.seq))) or 0
    errors: list[Exception] = []

    def writer(n: int) -> None:
        actor = Actor(user_id=1000 + n, username=f"writer-{n}")
        try:
            with maker() as s:
                for i in range(25):
                    with transaction(s):
                        audit.record(s, actor, AuditAction.VIEW, resource_type="Test", resource_id=i)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with maker() as s:
        audit.seal(s)  # what a sealer skipped under contention, the next one (or the worker) takes
        seqs = s.scalars(select(AuditEvent.seq).where(AuditEvent.seq > start).order_by(AuditEvent.seq)).all()
        assert seqs == list(range(start + 1, start + 201))
        assert audit.verify(s).ok


def test_a_servers_sealer_chains_what_audited_commits_wrote(fresh_databases):
    """The background sealer of a server process: woken by each audited commit, it chains
    the waiting rows in its own transactions; stopping it chains the rest."""
    import time

    from tests.conftest import SESSION_INFO

    from healthgrid.db import make_engine, make_sessionmaker, transaction
    from healthgrid.migrate import upgrade
    from healthgrid.security import Sealer
    from healthgrid.security.domain import Actor

    url = fresh_databases.create("sealer")
    upgrade(url)
    engine = make_engine(url)
    sealer = Sealer()
    maker = make_sessionmaker(engine, info={**SESSION_INFO, "healthgrid_audit_sealer": sealer})
    sealer.start(maker)
    try:
        with maker() as s:
            with transaction(s):
                audit.record(s, Actor(user_id=99, username="sealer-test"), AuditAction.VIEW, resource_type="Test")
            row_id = s.scalar(select(func.max(AuditEvent.id)).where(AuditEvent.username == "sealer-test"))
            deadline = time.monotonic() + 10
            while s.get(AuditEvent, row_id).seq is None and time.monotonic() < deadline:
                s.rollback()  # a new snapshot
                time.sleep(0.02)
            assert s.get(AuditEvent, row_id).seq is not None
            assert audit.verify(s).ok
    finally:
        sealer.stop()
        engine.dispose()


def test_concurrent_read_then_write_transactions_do_not_fail_beside_the_sealer(fresh_databases):
    """Every access to personal data reads, then writes its audit row. With a sealer writing
    beside them, no transaction may fail (on SQLite a deferred transaction that has read
    could not write after another commit: hence BEGIN IMMEDIATE)."""
    import threading

    from tests.conftest import SESSION_INFO

    from healthgrid.db import make_engine, make_sessionmaker, transaction
    from healthgrid.migrate import upgrade
    from healthgrid.security import Sealer
    from healthgrid.security.domain import Actor

    url = fresh_databases.create("busy")
    upgrade(url)
    engine = make_engine(url)
    sealer = Sealer()
    maker = make_sessionmaker(engine, info={**SESSION_INFO, "healthgrid_audit_sealer": sealer})
    sealer.start(maker)
    errors: list[Exception] = []

    def worker(n: int) -> None:
        actor = Actor(user_id=n, username=f"w{n}")
        try:
            with maker() as s:
                for i in range(15):
                    with transaction(s):
                        s.scalar(select(func.count()).select_from(AuditEvent))  # read first
                        audit.record(s, actor, AuditAction.VIEW, resource_type="Test", resource_id=i)
        except Exception as exc:  # pragma: no cover - the assertion reports it
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sealer.stop()
    assert not errors, errors[:1]
    with maker() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 90
        report = audit.verify(s)
        assert report.ok and report.unsealed == 0, report
    engine.dispose()


def test_housekeeping_forgets_old_failures_and_sessions_only(session, world):
    from datetime import timedelta

    from healthgrid.db import utcnow
    from healthgrid.security.models import LoginFailure, WebSession

    session.add_all([LoginFailure(client="10.1.1.1", at=utcnow() - timedelta(days=2)),
                     LoginFailure(client="10.1.1.1", at=utcnow())])
    old_token, _ = service.start_session(session, world.users[Role.NURSE], client=None, mfa_passed=True)
    new_token, _ = service.start_session(session, world.users[Role.NURSE], client=None, mfa_passed=True)
    old = service.resolve_session(session, old_token)
    session.get(WebSession, old.session_id).last_seen_at = utcnow() - timedelta(days=31)
    session.flush()
    assert service.housekeeping(session) == {"login_failures": 1, "sessions": 1}
    assert service.resolve_session(session, new_token) is not None


def test_a_population_role_reads_patients_of_facilities_in_its_county_only(session, world):
    from healthgrid.security import access

    hosp_a, hosp_b = world.region.county_hospital.id, world.hosp_b.id

    def patient_orgs(_s, patient_id):
        return {hosp_a} if patient_id == 1 else {hosp_b}

    access.register_patient_orgs_source(patient_orgs)
    try:
        cdc = actor_of(session, world, Role.CDC_EPIDEMIOLOGIST)  # scoped on county A
        assert access.check(session, cdc, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                            patient_id=1).basis == "population"
        with pytest.raises(Forbidden) as err:
            access.check(session, cdc, Perm.PATIENT_READ, AuditAction.VIEW, resource_type="Patient",
                         patient_id=2)
        assert err.value.code == "SEC-104"
    finally:
        access.PATIENT_ORGS_SOURCES.remove(patient_orgs)
