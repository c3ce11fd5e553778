"""Who may do what at one employer (rules 2 and 3), asked of an Authority: no database."""

from __future__ import annotations

from app.access.authority import Authority
from app.access.models import Role, SelfService

CODES = frozenset({1, 2, 3})
CLOSED = frozenset({3})
ME, OTHER = 10, 20


def authority(
    *roles: Role, all_codes: bool = True, codes: frozenset[int] = frozenset()
) -> Authority:
    return Authority(ME, 1, frozenset(roles), all_codes, codes, CODES, CLOSED)


def test_only_orderers_manage_administrators() -> None:
    assert authority(Role.ORDERER).manages_administrators
    assert authority(Role.DELEGATED_ORDERER).manages_administrators
    assert not authority(Role.ADMINISTRATOR).manages_administrators
    assert not authority().manages_administrators
    assert authority(Role.ADMINISTRATOR).manages_permissions
    assert not authority().manages_permissions


def test_nobody_grants_themselves_anything() -> None:
    admin = authority(Role.ADMINISTRATOR)
    assert admin.may_grant(OTHER, 1, SelfService.STATISTICS)
    assert not admin.may_grant(ME, 1, SelfService.STATISTICS)
    assert not admin.may_revoke(ME, 1)
    assert not authority(Role.ORDERER).may_manage_administrator(ME, True, frozenset())


def test_a_closed_code_allows_only_invoices() -> None:
    admin = authority(Role.ADMINISTRATOR)
    assert admin.may_grant(OTHER, 3, SelfService.INVOICES)
    assert not admin.may_grant(OTHER, 3, SelfService.EMPLOYMENT_REPORTING)


def test_a_role_with_chosen_codes_covers_only_them() -> None:
    admin = authority(Role.ADMINISTRATOR, all_codes=False, codes=frozenset({2}))
    assert admin.covered_code_ids == {2}
    assert not admin.may_grant(OTHER, 1, SelfService.INVOICES)
    orderer = authority(Role.ORDERER, all_codes=False, codes=frozenset({1, 2}))
    assert orderer.may_manage_administrator(OTHER, False, frozenset({1}))
    assert not orderer.may_manage_administrator(OTHER, True, frozenset())
    assert not orderer.may_manage_administrator(OTHER, False, frozenset({3}))


def test_a_user_covers_no_codes() -> None:
    user = authority()
    assert user.covered_code_ids == frozenset()
    assert not user.may_grant(OTHER, 1, SelfService.INVOICES)
