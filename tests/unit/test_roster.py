"""The employer-role rules, asked of an employer's roster: no database, no Flask."""

from __future__ import annotations

from app.access.models import Role
from app.access.roster import Conflict, OpenErrand, RoleHolder, Roster

ANNA = "198112189876"
BERTIL = "199001019810"
CECILIA = "197205119824"
DAVID = "200001029834"
STRANGER = "198507049859"


def orderer(personnummer: str) -> RoleHolder:
    return RoleHolder(personnummer, Role.ORDERER)


def delegated(personnummer: str) -> RoleHolder:
    return RoleHolder(personnummer, Role.DELEGATED_ORDERER)


def administrator(personnummer: str) -> RoleHolder:
    return RoleHolder(personnummer, Role.ADMINISTRATOR)


def submitted(errand_id: int, subject: str, by: str = ANNA) -> OpenErrand:
    return OpenErrand(errand_id, subject, by, is_draft=False)


def draft(errand_id: int, subject: str, by: str) -> OpenErrand:
    return OpenErrand(errand_id, subject, by, is_draft=True)


# ---- who holds what ---------------------------------------------------------------------


def test_an_orderer_is_an_orderer() -> None:
    roster = Roster((orderer(ANNA),))
    assert roster.is_orderer(ANNA)
    assert roster.holds_orderer_role(ANNA)


def test_a_delegated_orderer_holds_an_orderer_role_but_is_not_the_orderer() -> None:
    roster = Roster((delegated(BERTIL),))
    assert roster.is_delegated_orderer(BERTIL)
    assert roster.holds_orderer_role(BERTIL)
    assert not roster.is_orderer(BERTIL)


def test_an_administrator_holds_no_orderer_role() -> None:
    roster = Roster((administrator(BERTIL),))
    assert roster.is_administrator(BERTIL)
    assert not roster.holds_orderer_role(BERTIL)


def test_someone_without_a_grant_has_no_role() -> None:
    roster = Roster((orderer(ANNA),))
    assert roster.roles_of(CECILIA) == frozenset()
    assert not roster.holds_orderer_role(CECILIA)


def test_one_person_may_hold_several_roles() -> None:
    roster = Roster((orderer(ANNA), administrator(ANNA)))
    assert roster.roles_of(ANNA) == {Role.ORDERER, Role.ADMINISTRATOR}


# ---- rule 8: at least one orderer -------------------------------------------------------


def test_removing_the_only_orderer_leaves_none() -> None:
    assert Roster((orderer(ANNA),)).would_leave_no_orderer(ANNA)


def test_removing_one_of_two_orderers_leaves_one() -> None:
    assert not Roster((orderer(ANNA), orderer(BERTIL))).would_leave_no_orderer(ANNA)


def test_a_replacement_in_the_same_errand_leaves_an_orderer() -> None:
    assert not Roster((orderer(ANNA),)).would_leave_no_orderer(ANNA, replacement=BERTIL)


def test_a_delegated_orderer_left_behind_is_no_orderer() -> None:
    assert Roster((orderer(ANNA), delegated(BERTIL))).would_leave_no_orderer(ANNA)


def test_removing_a_delegated_orderer_keeps_the_orderer() -> None:
    assert not Roster((orderer(ANNA), delegated(BERTIL))).would_leave_no_orderer(BERTIL)


# ---- pending errands --------------------------------------------------------------------


def test_a_submitted_errand_about_the_person_is_pending() -> None:
    roster = Roster(errands=(submitted(1, BERTIL),))
    assert roster.has_pending_errand(BERTIL)


def test_an_errand_about_someone_else_is_not_pending_for_the_person() -> None:
    roster = Roster(errands=(submitted(1, CECILIA),))
    assert not roster.has_pending_errand(BERTIL)


def test_the_errand_asked_about_does_not_count_itself() -> None:
    roster = Roster(errands=(submitted(1, BERTIL),))
    assert not roster.has_pending_errand(BERTIL, excluding=1)


def test_another_persons_draft_blocks_nothing() -> None:
    roster = Roster((orderer(ANNA),), (draft(1, BERTIL, by=STRANGER),))
    assert not roster.has_pending_errand(BERTIL, asker=ANNA)
    assert not roster.has_pending_errand(BERTIL)  # nor for SPV


def test_the_askers_own_draft_about_the_person_is_pending() -> None:
    roster = Roster((orderer(ANNA),), (draft(1, BERTIL, by=ANNA),))
    assert roster.has_pending_errand(BERTIL, asker=ANNA)


def test_a_stranger_is_not_told_of_another_persons_submitted_errand() -> None:
    roster = Roster((orderer(ANNA),), (submitted(1, BERTIL, by=ANNA),))
    assert not roster.has_pending_errand(BERTIL, asker=STRANGER)


def test_a_stranger_is_told_of_their_own_errand() -> None:
    roster = Roster((orderer(ANNA),), (submitted(1, BERTIL, by=STRANGER),))
    assert roster.has_pending_errand(BERTIL, asker=STRANGER)


# ---- what a form may tell the one asking ------------------------------------------------


def test_an_orderer_may_be_told_about_anyone_at_the_employer() -> None:
    assert Roster((orderer(ANNA),)).may_tell(ANNA, BERTIL)


def test_a_delegated_orderer_may_be_told_about_anyone_at_the_employer() -> None:
    assert Roster((delegated(BERTIL),)).may_tell(BERTIL, ANNA)


def test_an_administrator_is_a_stranger_to_the_orderers_errands() -> None:
    assert not Roster((orderer(ANNA), administrator(BERTIL))).may_tell(BERTIL, ANNA)


def test_a_stranger_may_be_told_only_about_themself() -> None:
    roster = Roster((orderer(ANNA),))
    assert not roster.may_tell(STRANGER, ANNA)
    assert roster.may_tell(STRANGER, STRANGER)


def test_spv_may_be_told_everything() -> None:
    assert Roster().may_tell(None, ANNA)


# ---- registering a person ---------------------------------------------------------------


def test_registering_someone_who_holds_an_orderer_role_conflicts() -> None:
    roster = Roster((orderer(ANNA), delegated(BERTIL)))
    assert roster.conflicts_registering(BERTIL) == [Conflict.ALREADY_ORDERER]


def test_registering_a_person_with_a_pending_errand_conflicts() -> None:
    roster = Roster(errands=(submitted(1, BERTIL),))
    assert roster.conflicts_registering(BERTIL, errand_id=2) == [Conflict.PENDING_ERRAND]


def test_registering_a_new_person_conflicts_with_nothing() -> None:
    assert Roster((orderer(ANNA),)).conflicts_registering(BERTIL, asker=ANNA) == []


def test_a_stranger_registering_an_orderer_is_told_nothing() -> None:
    roster = Roster((orderer(ANNA),), (submitted(1, ANNA, by=ANNA),))
    assert roster.conflicts_registering(ANNA, asker=STRANGER, errand_id=2) == []
    assert roster.conflicts_registering(ANNA, errand_id=2) == [
        Conflict.ALREADY_ORDERER,
        Conflict.PENDING_ERRAND,
    ]


# ---- removing a person ------------------------------------------------------------------


def test_removing_someone_without_an_orderer_role_conflicts() -> None:
    roster = Roster((orderer(ANNA), administrator(BERTIL)))
    assert roster.conflicts_removing(BERTIL) == [Conflict.NOT_AN_ORDERER]


def test_removing_the_last_orderer_conflicts() -> None:
    assert Roster((orderer(ANNA),)).conflicts_removing(ANNA, asker=ANNA) == [
        Conflict.WOULD_LEAVE_NO_ORDERER
    ]


def test_a_replacement_who_is_an_orderer_already_conflicts() -> None:
    roster = Roster((orderer(ANNA), delegated(BERTIL)))
    assert roster.conflicts_removing(ANNA, BERTIL) == [Conflict.REPLACEMENT_ALREADY_ORDERER]


def test_removing_a_person_with_a_pending_errand_conflicts() -> None:
    roster = Roster((orderer(ANNA), orderer(BERTIL)), (submitted(1, BERTIL),))
    assert roster.conflicts_removing(BERTIL, errand_id=2) == [Conflict.PENDING_ERRAND]


def test_a_stranger_removing_an_orderer_is_told_nothing() -> None:
    roster = Roster((orderer(ANNA),))
    assert roster.conflicts_removing(ANNA, asker=STRANGER) == []
    assert roster.conflicts_removing(BERTIL, asker=STRANGER) == []  # not even "no orderer"


def test_a_stranger_removing_themself_is_told_they_are_no_orderer() -> None:
    roster = Roster((orderer(ANNA),))
    assert roster.conflicts_removing(STRANGER, asker=STRANGER) == [Conflict.NOT_AN_ORDERER]
