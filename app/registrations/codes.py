"""The codes the registrations domain hands to the UI, which names each one in words
(``app.labels``; a test checks every member has a Swedish and an English label)."""

from __future__ import annotations

import enum


class ProblemCode(enum.StrEnum):
    """Why a form step (``FormProblem``) or a finished BankID signature was refused."""

    UNKNOWN_EMPLOYER = "unknown_employer"
    CODE_NOT_OF_EMPLOYER = "code_not_of_employer"
    ALREADY_ORDERER = "already_orderer"
    PENDING_ERRAND = "pending_errand"
    NOT_AN_ORDERER = "not_an_orderer"
    SELF_REMOVAL_OF_OTHER = "self_removal_of_other"
    REPLACEMENT_IS_REMOVED = "replacement_is_removed"
    NOT_AN_ORDERER_ROLE = "not_an_orderer_role"
    INVALID_SIGNATURE = "invalid_signature"
    WRONG_DOCUMENT = "wrong_document"
    WRONG_SIGNER = "wrong_signer"
    TOO_YOUNG = "too_young"
    """The person to register is younger than 15."""
    REPLACEMENT_NEEDS_SIGNATORY = "replacement_needs_signatory"
    """A removal naming a new orderer, signed by the departing orderer: a registration is
    always signed by the employer's signatory."""
    CO_SIGNATORY_NEEDED = "co_signatory_needed"
    """The employer signs two jointly: the form names a second, different signatory."""


class StepWarning(enum.StrEnum):
    """What a form step says at once about values it accepts (the person may go on)."""

    SIGNATORY_NOT_IN_REGISTER = "signatory_not_in_register"
    """The signatory named is not in the signatory register for the employer."""
    ONLY_CLOSED_CODES = "only_closed_codes"
    """Every employer code chosen is closed (they still get invoices, nothing else)."""


class CheckName(enum.StrEnum):
    """The automated checks of a received errand (``VerificationCheck.name``)."""

    ID_NUMBERS = "id_numbers"
    EMPLOYER = "employer"
    SIGNATORY = "signatory"
    SIGNATURE = "signature"
    CONFLICTS = "conflicts"


class Severity(enum.StrEnum):
    """What a finding means for the caseworker's decision."""

    BLOCKING = "blocking"
    """The decision cannot be made as asked: no approval (reject or ask for completion)."""
    REVIEW = "review"
    """Behöver granskas: approval only with a note on each such finding."""
    NOTE = "note"
    """For information; nothing to do."""


class Finding(enum.StrEnum):
    """What an automated check found (``VerificationCheck.findings``); how much it weighs
    is ``Finding.severity``, the one home of "blocking" and "needs review"."""

    INVALID_ID_NUMBER = "invalid_id_number"
    UNKNOWN_EMPLOYER = "unknown_employer"
    CODE_NOT_OF_EMPLOYER = "code_not_of_employer"
    REMOVAL_SIGNED_BY_ORDERER = "removal_signed_by_orderer"
    REPLACEMENT_NOT_SIGNED_BY_SIGNATORY = "replacement_not_signed_by_signatory"
    """The departing orderer signed alone: the removal is covered, the new orderer is not
    registered (a registration is always signed by the signatory)."""
    NOT_IN_SIGNATORY_REGISTER = "not_in_signatory_register"
    ALREADY_ORDERER = "already_orderer"
    NOT_AN_ORDERER = "not_an_orderer"
    WOULD_LEAVE_NO_ORDERER = "would_leave_no_orderer"
    ORDERER_REMOVED_SINCE_APPROVAL = "orderer_removed_since_approval"
    """Found when applying: another removal went first, and this one now leaves no orderer."""
    PENDING_ERRAND = "pending_errand"
    REPLACEMENT_ALREADY_ORDERER = "replacement_already_orderer"
    SEAL_INVALID = "seal_invalid"
    SIGNATURE_INVALID = "signature_invalid"
    SIGNATURE_OF_OTHER_DOCUMENT = "signature_of_other_document"
    SIGNER_NOT_NAMED_SIGNATORY = "signer_not_named_signatory"
    SIGNED_DOCUMENT_MISSING = "signed_document_missing"
    SCAN_MISSING = "scan_missing"
    HANDWRITTEN_SIGNATURE_MISSING = "handwritten_signature_missing"
    SIGNED_ON_PAPER = "signed_on_paper"
    MATCHED_BY_HAND = "matched_by_hand"
    TYPED_IN_BY_CLERK = "typed_in_by_clerk"
    DIGEST_MISMATCH_MATCHED_BY_HAND = "digest_mismatch_matched_by_hand"
    MAC_MISMATCH_MATCHED_BY_HAND = "mac_mismatch_matched_by_hand"
    SIGNATORY_LEFT_REGISTER = "signatory_left_register"
    """The signatory who signed the orderer's registration is no longer a signatory of the
    employer (an imported register extract): the caseworker reviews the role."""
    JOINT_SIGNATURE_MISSING = "joint_signature_missing"
    """The employer signs two jointly, and the form lacks the second signatory's signature
    (or names no second, different signatory)."""

    @property
    def severity(self) -> Severity:
        if self in _BLOCKING:
            return Severity.BLOCKING
        if self in _NOTES:
            return Severity.NOTE
        return Severity.REVIEW

    @property
    def blocks_approval(self) -> bool:
        return self.severity is Severity.BLOCKING

    @property
    def needs_review(self) -> bool:
        return self.severity is Severity.REVIEW


_BLOCKING = frozenset(
    {
        Finding.INVALID_ID_NUMBER,
        Finding.UNKNOWN_EMPLOYER,
        Finding.CODE_NOT_OF_EMPLOYER,
        Finding.ALREADY_ORDERER,
        Finding.NOT_AN_ORDERER,
        Finding.REPLACEMENT_ALREADY_ORDERER,
        Finding.SEAL_INVALID,
        Finding.SIGNATURE_INVALID,
        Finding.SIGNATURE_OF_OTHER_DOCUMENT,
        Finding.SIGNER_NOT_NAMED_SIGNATORY,
        Finding.SIGNED_DOCUMENT_MISSING,
        Finding.SCAN_MISSING,
        Finding.HANDWRITTEN_SIGNATURE_MISSING,
        Finding.MAC_MISMATCH_MATCHED_BY_HAND,
        Finding.JOINT_SIGNATURE_MISSING,
    }
)
"""Findings that make approval impossible: the person already holds the role (or is not
an orderer to remove), the employer or its codes are wrong, the signature does not hold."""

_NOTES = frozenset({Finding.REMOVAL_SIGNED_BY_ORDERER, Finding.SIGNED_ON_PAPER})
"""Findings that only inform."""


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is used."""
    return message


HISTORY_MESSAGES = {
    "created": N_("Utkast skapat"),
    "step_saved": N_("Uppgifter sparade"),
    "request_signature": N_("Skickat för underskrift med BankID"),
    "cancel_signature": N_("Underskriften avbröts"),
    "send_to_signatory": N_("Skickat till firmatecknaren för underskrift"),
    "recall_invitation": N_("Inbjudan till firmatecknaren tillbakatagen"),
    "decline": N_("Firmatecknaren avböjde att skriva under"),
    "return_to_signatory": N_("Underskriften avbröts, tillbaka hos firmatecknaren"),
    "signatory_reminded": N_("Påminnelse skickad till firmatecknaren"),
    "signatory_reminded_before_expiry": N_("Påminnelse till firmatecknaren innan inbjudan går ut"),
    "sign": N_("Underskrivet med BankID"),
    "co_sign": N_("Underskrivet med BankID av den första av två firmatecknare"),
    "print_for_post": N_("Utskrivet för post"),
    "receive": N_("Mottaget av SPV"),
    "start_verification": N_("Automatiska kontroller påbörjade"),
    "finish_verification": N_("Automatiska kontroller klara"),
    "request_completion": N_("Komplettering begärd"),
    "complete": N_("Kompletterat"),
    "approve": N_("Godkänt"),
    "reject": N_("Avslaget"),
    "apply": N_("Behörigheten ändrad"),
    "close": N_("Beslutet arkiverat, ärendet avslutat"),
    "withdraw": N_("Återkallat"),
    "expire": N_("Avslutat utan beslut (tiden gick ut)"),
    "fail": N_("Tekniskt fel"),
    "attempt_failed": N_("Tekniskt fel i ett steg – försöker igen"),
    "retry": N_("Steget körs igen"),
    "claimed": N_("Taget av handläggare"),
    "released": N_("Släppt tillbaka till kön"),
    "reassigned": N_("Tilldelat annan handläggare"),
    "commented": N_("Intern anteckning"),
    "first_approval": N_("Första godkännandet"),
    "findings_acknowledged": N_("Anmärkningar granskade"),
    "deadline_reminder": N_("Påminnelse om förfallodag skickad"),
    "deadline_escalated": N_("Eskalerat till gruppchef"),
    "replacement_not_registered": N_(
        "Den nya behöriga beställaren registrerades inte: firmatecknarens underskrift saknas"
    ),
    "return_to_review": N_("Tillbaka till handläggning: kunde inte genomföras som beslutat"),
    "take_effect": N_("Väntetiden för papper är slut – ändringen genomförs"),
    "dispute": N_(
        "Stoppad av arbetsgivaren i väntetiden: känner inte till anmälan (misstänkt bedrägeri)"
    ),
    "stop_at_intake": N_("Stoppad vid skanningen: arbetsgivaren har spärrat blanketter på papper"),
    "open_review": N_(
        "Öppnat av SPV: firmatecknaren som skrev under anmälan har slutat enligt Bolagsverket"
    ),
}
"""An errand's audit events (``errand.<verb>``) in words, by verb: the caseworker's history
(``app.labels``) and the evidence page of a sealed document
(:mod:`app.registrations.evidence`) name them alike."""
