"""Swedish (and, through Flask-Babel, English) names for the codes the UI shows."""

from __future__ import annotations

from app.access.models import CodeStatus, EmployerCode, Role
from app.intake.models import BatchState, PageOutcome, PageStatus, ScanBatch
from app.lang import lazy_gettext as _l
from app.privacy.access_log import Look
from app.privacy.models import ViewKind
from app.registrations.codes import HISTORY_MESSAGES, CheckName, Finding, ProblemCode
from app.registrations.models import Channel, CheckOutcome, DocumentKind, Errand, ErrandKind
from app.registrations.status import (
    NextStep,
    SubmitterStatus,
    expected_decision,
    next_step,
    submitter_status,
)
from app.safeguards.service import PAPER_LOCK_REASON
from forms.intake import SET_ASIDE_REASONS
from workflows.states import ErrandState as S
from workflows.states import Refusal

STATE_LABELS = {
    S.DRAFT: _l("Utkast"),
    S.AWAITING_SIGNATORY: _l("Väntar på firmatecknarens underskrift"),
    S.AWAITING_SIGNATURE: _l("Väntar på underskrift"),
    S.SIGNED: _l("Underskriven"),
    S.AWAITING_POST: _l("Väntar på post"),
    S.RECEIVED: _l("Mottagen"),
    S.VERIFYING: _l("Kontrolleras"),
    S.IN_REVIEW: _l("Handläggs"),
    S.AWAITING_COMPLETION: _l("Väntar på komplettering"),
    S.APPROVED: _l("Godkänd"),
    S.AWAITING_EFFECT: _l("Godkänd – väntetid för papper"),
    S.SUSPECTED_FRAUD: _l("Misstänkt bedrägeri"),
    S.APPLIED: _l("Genomförd"),
    S.CLOSED: _l("Avslutad"),
    S.REJECTED: _l("Avslagen"),
    S.WITHDRAWN: _l("Återkallad"),
    S.EXPIRED: _l("Utgången"),
    S.FAILED: _l("Tekniskt fel"),
    S.STOPPED: _l("Stoppad av arbetsgivarens spärr"),
}
SUBMITTER_STATUS_LABELS = {
    SubmitterStatus.DRAFT: _l("Utkast"),
    SubmitterStatus.AWAITING_SIGNATURE: _l("Väntar på underskrift"),
    SubmitterStatus.AWAITING_SIGNATORY: _l("Väntar på firmatecknarens underskrift"),
    SubmitterStatus.AWAITING_POST: _l("Väntar på post"),
    SubmitterStatus.RECEIVED: _l("Mottagen"),
    SubmitterStatus.IN_REVIEW: _l("Handläggs"),
    SubmitterStatus.AWAITING_COMPLETION: _l("Väntar på komplettering"),
    SubmitterStatus.GRANTED: _l("Beviljad"),
    SubmitterStatus.REJECTED: _l("Avslagen"),
    SubmitterStatus.WITHDRAWN: _l("Återkallad"),
    SubmitterStatus.EXPIRED: _l("Utgången"),
    SubmitterStatus.DELAYED: _l("Försenad – tekniskt fel hos SPV"),
    SubmitterStatus.STOPPED: _l("Stoppad – arbetsgivaren tar inte emot blanketter på papper"),
}
SUBMITTER_STATUS_BADGES = {
    SubmitterStatus.GRANTED: "success",
    SubmitterStatus.REJECTED: "error",
    SubmitterStatus.DELAYED: "error",
    SubmitterStatus.AWAITING_COMPLETION: "warning",
    SubmitterStatus.EXPIRED: "warning",
    SubmitterStatus.STOPPED: "error",
}
NEXT_STEP_LABELS = {
    NextStep.FILL_IN: _l("Fyll i och skicka in blanketten"),
    NextStep.SIGNATORY_SIGNS: _l("Firmatecknaren skriver under"),
    NextStep.POST_THE_FORM: _l("Skicka den underskrivna blanketten till SPV"),
    NextStep.SPV_REVIEWS: _l("SPV handlägger ärendet"),
    NextStep.ANSWER_SPV: _l("Svara på SPV:s fråga"),
    NextStep.CHANGE_APPLIED: _l("SPV lägger in ändringen"),
    NextStep.WAITING_PERIOD: _l("Ändringen börjar gälla när väntetiden för papper är slut"),
    NextStep.SPV_FIXES: _l("SPV åtgärdar felet och försöker igen"),
    NextStep.NONE: _l("Inget – ärendet är klart"),
}
KIND_LABELS = {
    ErrandKind.REGISTRATION: _l("Anmälan – behörig beställare"),
    ErrandKind.REMOVAL: _l("Ta bort behörig beställare"),
    ErrandKind.SIGNATORY_CHANGE: _l("Ändrad firmatecknare – granska behörig beställare"),
}
CHANNEL_LABELS = {Channel.E_SIGN: _l("E-underskrift"), Channel.PAPER: _l("Papper")}
ROLE_LABELS = {
    Role.ORDERER: _l("Behörig beställare"),
    Role.DELEGATED_ORDERER: _l("Delegerad behörig beställare"),
    Role.ADMINISTRATOR: _l("Administratör"),
}
OUTCOME_LABELS = {
    CheckOutcome.PASSED: _l("Utan anmärkning"),
    CheckOutcome.FLAGGED: _l("Behöver granskas"),
    CheckOutcome.FAILED: _l("Underkänd"),
}
CHECK_LABELS = {
    CheckName.ID_NUMBERS: _l("Personnummer och organisationsnummer"),
    CheckName.EMPLOYER: _l("Arbetsgivare och arbetsgivarkoder"),
    CheckName.SIGNATORY: _l("Firmatecknare enligt registret"),
    CheckName.SIGNATURE: _l("Underskrift och försegling"),
    CheckName.CONFLICTS: _l("Konflikter med befintliga behörigheter och ärenden"),
}
DOCUMENT_LABELS = {
    DocumentKind.PRINTED: _l("Utskriven blankett"),
    DocumentKind.SIGNED: _l("Underskriven och förseglad blankett"),
    DocumentKind.SCAN: _l("Skannad blankett"),
    DocumentKind.RECEIPT: _l("Kvittens"),
    DocumentKind.DECISION: _l("Beslut"),
    DocumentKind.EVIDENCE: _l("Bevis för e-underskriften"),
    DocumentKind.REGISTER_EXTRACT: _l("Registerutdrag"),
}
VIEW_LABELS = {
    ViewKind.ERRAND: _l("Ärendet i handläggningen"),
    ViewKind.ERRAND_DOCUMENT: _l("En handling i ärendet"),
    ViewKind.EMPLOYER_LOOKUP: _l("Sök arbetsgivare: behöriga beställare och administratörer"),
    ViewKind.PAPER_FORM: _l("Kontroll av inskannad blankett"),
    ViewKind.SCANNED_PAGES: _l("Manuell kö: inskannade sidor"),
    ViewKind.PAPER_FORM_TYPING: _l("Inskrivning av handskriven blankett"),
    ViewKind.ACCESS_LOG: _l("Vem har tittat på uppgifterna"),
    ViewKind.ACCESS_LOG_CSV: _l("Vem har tittat på uppgifterna, som CSV"),
    ViewKind.REGISTER_EXTRACT: _l("Registerutdrag"),
    ViewKind.REGISTER_EXTRACT_DOCUMENT: _l("Registerutdraget öppnat"),
}
API_READ_LABELS = {
    "check": _l("Kontroll av behörighet (API)"),
    "check_batch": _l("Kontroll av behörighet (API)"),
    "person_permissions": _l("Personens behörigheter (API)"),
    "employer_contacts": _l("Arbetsgivarens kontaktpersoner (API)"),
    "changes": _l("Ändringsflödet (API)"),
}
"""What an API client read (``ApiAccessLog.endpoint``)."""


def look_label(look: Look) -> str:
    """What a look at a person's data was: the staff page, or the API's endpoint."""
    if look.by_staff:
        return str(VIEW_LABELS[ViewKind(look.what)])
    label = API_READ_LABELS.get(look.what)
    return str(label) if label is not None else look.what


FINDING_LABELS = {
    Finding.INVALID_ID_NUMBER: _l("Ett personnummer eller organisationsnummer är ogiltigt."),
    Finding.UNKNOWN_EMPLOYER: _l("Arbetsgivaren finns inte hos SPV."),
    Finding.CODE_NOT_OF_EMPLOYER: _l("Arbetsgivarkoder som inte hör till arbetsgivaren:"),
    Finding.REMOVAL_SIGNED_BY_ORDERER: _l(
        "En borttagning skrivs under av den behöriga beställaren eller av en firmatecknare."
    ),
    Finding.REPLACEMENT_NOT_SIGNED_BY_SIGNATORY: _l(
        "Den nya behöriga beställaren registreras inte: blanketten är bara underskriven av "
        "den som tas bort, och en anmälan skrivs alltid under av en firmatecknare."
    ),
    Finding.NOT_IN_SIGNATORY_REGISTER: _l(
        "Firmatecknaren finns inte i registret för arbetsgivaren."
    ),
    Finding.SIGNATORY_LEFT_REGISTER: _l(
        "Firmatecknaren som skrev under anmälan är inte längre firmatecknare enligt "
        "Bolagsverkets register. Behörigheten är markerad för granskning, inte borttagen."
    ),
    Finding.ALREADY_ORDERER: _l("Personen är redan behörig beställare hos arbetsgivaren."),
    Finding.NOT_AN_ORDERER: _l("Personen är inte behörig beställare hos arbetsgivaren."),
    Finding.WOULD_LEAVE_NO_ORDERER: _l(
        "Borttagningen skulle lämna arbetsgivaren utan behörig beställare."
    ),
    Finding.ORDERER_REMOVED_SINCE_APPROVAL: _l(
        "Sedan ärendet godkändes har en annan behörig beställare tagits bort. Ärendet har "
        "därför inte genomförts: borttagningen lämnar nu arbetsgivaren utan behörig "
        "beställare och behöver godkännas av två handläggare, eller avslås."
    ),
    Finding.PENDING_ERRAND: _l(
        "Det finns ett annat pågående ärende för personen hos arbetsgivaren."
    ),
    Finding.REPLACEMENT_ALREADY_ORDERER: _l(
        "Den nya behöriga beställaren är redan behörig beställare hos arbetsgivaren."
    ),
    Finding.SEAL_INVALID: _l("SPV:s försegling av den underskrivna blanketten håller inte."),
    Finding.SIGNATURE_INVALID: _l("BankID-underskriften går inte att kontrollera."),
    Finding.SIGNATURE_OF_OTHER_DOCUMENT: _l("BankID-underskriften gäller ett annat dokument."),
    Finding.SIGNER_NOT_NAMED_SIGNATORY: _l(
        "Den som skrev under med BankID är inte firmatecknaren i blanketten."
    ),
    Finding.SIGNED_DOCUMENT_MISSING: _l("Den underskrivna blanketten saknas."),
    Finding.SCAN_MISSING: _l("Ingen skannad blankett är kopplad till ärendet."),
    Finding.HANDWRITTEN_SIGNATURE_MISSING: _l(
        "Registratorn har inte kunnat bekräfta underskriften på pappersblanketten."
    ),
    Finding.SIGNED_ON_PAPER: _l("Registratorn har bekräftat firmatecknarens underskrift."),
    Finding.MATCHED_BY_HAND: _l(
        "En eller flera sidor saknade läsbar QR-kod och kopplades till ärendet av en registrator."
    ),
    Finding.TYPED_IN_BY_CLERK: _l(
        "Blanketten var en tom blankett ifylld för hand; en registrator skrev in uppgifterna."
    ),
    Finding.DIGEST_MISMATCH_MATCHED_BY_HAND: _l(
        "En sida skrevs ut med andra uppgifter än ärendet har och kopplades för hand."
    ),
    Finding.MAC_MISMATCH_MATCHED_BY_HAND: _l(
        "En sidas QR-kod hade ogiltig kontrollsumma (möjlig manipulation) och kopplades för hand."
    ),
    Finding.JOINT_SIGNATURE_MISSING: _l(
        "Arbetsgivaren tecknas av två firmatecknare i förening, och den andra "
        "firmatecknarens underskrift saknas."
    ),
}
REFUSAL_LABELS = {
    Refusal.WRONG_STATE: _l("Åtgärden går inte att göra i ärendets nuvarande läge."),
    Refusal.NOT_PERMITTED: _l("Du får inte göra den här åtgärden i ärendet."),
    Refusal.FOUR_EYES: _l(
        "Du kan inte besluta i ett ärende som du själv har skickat in eller som "
        "gäller dig (fyraögonsprincipen)."
    ),
    Refusal.INCOMPLETE: _l("Ärendet saknar uppgifter som behövs för åtgärden."),
    Refusal.CHECKS_FAILED: _l(
        "En automatisk kontroll är underkänd. Avslå ärendet eller begär komplettering."
    ),
    Refusal.UNACKNOWLEDGED_FINDINGS: _l(
        "Skriv en anteckning om hur du har granskat varje kontroll som behöver granskas."
    ),
}


INTAKE_ERROR_LABELS = {
    # Files that are no scan we can read (app.intake.scan_file.BadScanFile)
    "not_pdf_or_image": _l("Filen är varken en PDF eller en TIFF-, PNG- eller JPEG-bild."),
    "encrypted_pdf": _l("PDF-filen är lösenordsskyddad. Skanna in papperen igen utan lösenord."),
    "broken_pdf": _l("PDF-filen är trasig eller ofullständig och går inte att läsa."),
    "no_pages": _l("Filen innehåller inga sidor."),
    "too_many_pages": _l("Filen har för många sidor. Dela upp den i mindre buntar."),
    "file_too_large": _l("Filen är för stor. Dela upp den i mindre buntar."),
    "image_too_large": _l("Bilden är för stor. Skanna med högst 300 dpi."),
    # The clerk's actions (app.intake.clerk_actions.IntakeError)
    "page_not_in_queue": _l("Sidan är redan hanterad."),
    "page_not_set_aside": _l("Sidan är inte lagd åt sidan."),
    "unknown_reference": _l("Det finns inget ärende med den referensen."),
    "not_awaiting_post": _l("Ärendet väntar inte på någon pappersblankett."),
    "no_such_page": _l("Blanketten har inte så många sidor."),
    "already_confirmed": _l("Blanketten är redan kontrollerad."),
    "no_image": _l("Sidan gick inte att visa och kan inte kopplas. Skanna in pappret igen."),
    "wrong_form_kind": _l("Sidan kommer från en annan sorts blankett än den du skrev in."),
    "paper_locked": _l(
        "Arbetsgivaren har spärrat blanketter på papper. Blanketten tas inte emot: lägg "
        "sidorna åt sidan."
    ),
    "reading_failed": _l("Filen gick inte att läsa in trots flera försök."),
}
PAGE_OUTCOME_LABELS = {
    PageOutcome.MATCHED: _l("Kopplad till ärende"),
    PageOutcome.NO_QR_CODE: _l("Ingen läsbar QR-kod"),
    PageOutcome.MALFORMED: _l("Okänd kod, inte SPV:s blankett"),
    PageOutcome.MAC_MISMATCH: _l("QR-koden är ändrad – möjlig manipulation"),
    PageOutcome.BLANK_FORM: _l("Tom blankett ifylld för hand"),
    PageOutcome.UNKNOWN_ERRAND: _l("Inget ärende väntar på den här blanketten"),
    PageOutcome.DIGEST_MISMATCH: _l("Uppgifterna på sidan stämmer inte med ärendet"),
    PageOutcome.DUPLICATE: _l("Kopia av en sida som redan finns"),
    PageOutcome.BLANK_SHEET: _l("Tom sida"),
    PageOutcome.PAPER_LOCKED: _l(
        "Arbetsgivaren har spärrat blanketter på papper – ärendet är stoppat"
    ),
    PageOutcome.TIMED_OUT: _l("Sidan tog för lång tid att läsa"),
    PageOutcome.TOO_LARGE: _l("Sidan är för stor"),
    PageOutcome.UNREADABLE: _l("Sidan går inte att läsa"),
}
PAGE_STATUS_LABELS = {
    PageStatus.WAITING: _l("Väntar på blankettens övriga sidor"),
    PageStatus.NEEDS_CLERK: _l("Manuell hantering"),
    PageStatus.FILED: _l("Arkiverad med ärendet"),
    PageStatus.DISCARDED: _l("Lagd åt sidan"),
}
BATCH_STATE_LABELS = {
    BatchState.QUEUED: _l("I kö"),
    BatchState.READING: _l("Läses in"),
    BatchState.DONE: _l("Klar"),
    BatchState.REJECTED: _l("Kunde inte läsas"),
}


HISTORY_LABELS = {verb: _l(message) for verb, message in HISTORY_MESSAGES.items()}


SET_ASIDE_LABELS = {
    **SET_ASIDE_REASONS,
    PAPER_LOCK_REASON: _l("Arbetsgivaren har spärrat blanketter på papper"),
}
"""Why a page was set aside: the clerk's reasons, and the reader's own."""


def finding_label(finding: Finding) -> str:
    return str(FINDING_LABELS[finding])


def history_label(action: str) -> str:
    """An errand's audit event (``errand.<verb>``) in words."""
    verb = action.removeprefix("errand.")
    return str(HISTORY_LABELS[verb]) if verb in HISTORY_LABELS else action


def intake_error_message(code: str) -> str:
    return str(INTAKE_ERROR_LABELS.get(code, _l("Filen eller sidan kunde inte hanteras.")))


def register(jinja_globals: dict[str, object]) -> None:
    jinja_globals.update(
        state_label=STATE_LABELS.__getitem__,
        kind_label=KIND_LABELS.__getitem__,
        channel_label=lambda c: CHANNEL_LABELS[c] if c else "–",
        role_label=lambda r: ROLE_LABELS[Role(r)],
        outcome_label=OUTCOME_LABELS.__getitem__,
        check_label=lambda name: CHECK_LABELS[CheckName(name)],
        finding_label=lambda code: FINDING_LABELS[Finding(code)],
        document_label=DOCUMENT_LABELS.__getitem__,
        page_outcome_label=PAGE_OUTCOME_LABELS.__getitem__,
        page_status_label=PAGE_STATUS_LABELS.__getitem__,
        set_aside_reason_label=lambda key: SET_ASIDE_LABELS.get(key or "", key or "–"),
        batch_state_label=BATCH_STATE_LABELS.__getitem__,
        batch_label=batch_label,
        intake_error_message=intake_error_message,
        refusal_message=refusal_message,
        history_label=history_label,
        submitter_status_label=lambda e: SUBMITTER_STATUS_LABELS[submitter_status(e)],
        submitter_status_badge=submitter_status_badge,
        next_step_label=lambda e: NEXT_STEP_LABELS[next_step(e)],
        expected_decision=expected_decision,
        look_label=look_label,
    )


def batch_label(batch: ScanBatch, awaiting_check: set[int]) -> str:
    """A batch's state in words: a read batch that a clerk has still to check waits for
    that check ("väntar på kontroll"), it is not done."""
    if batch.state is BatchState.DONE and batch.id in awaiting_check:
        return str(_l("Inläst – väntar på kontroll"))
    return str(BATCH_STATE_LABELS[batch.state])


def submitter_status_badge(errand: Errand) -> str:
    """The design system's badge kind of the submitter's status."""
    return SUBMITTER_STATUS_BADGES.get(submitter_status(errand), "info")


PROBLEM_MESSAGES = {
    ProblemCode.UNKNOWN_EMPLOYER: _l(
        "SPV känner inte till någon arbetsgivare med det organisationsnumret."
    ),
    ProblemCode.CODE_NOT_OF_EMPLOYER: _l("Välj bland arbetsgivarens egna arbetsgivarkoder."),
    ProblemCode.ALREADY_ORDERER: _l("Personen är redan behörig beställare hos arbetsgivaren."),
    ProblemCode.TOO_YOUNG: _l("En behörig beställare måste ha fyllt 15 år."),
    ProblemCode.PENDING_ERRAND: _l(
        "Det finns redan ett pågående ärende för personen hos arbetsgivaren. Se Mina ärenden."
    ),
    ProblemCode.NOT_AN_ORDERER: _l("Personen är inte behörig beställare hos arbetsgivaren."),
    ProblemCode.SELF_REMOVAL_OF_OTHER: _l(
        "När du tar bort dig själv ska du ange ditt eget personnummer."
    ),
    ProblemCode.REPLACEMENT_IS_REMOVED: _l(
        "Den nya behöriga beställaren kan inte vara den som tas bort."
    ),
    ProblemCode.NOT_AN_ORDERER_ROLE: _l(
        "Välj behörig beställare eller delegerad behörig beställare."
    ),
    ProblemCode.INVALID_SIGNATURE: _l("Underskriften kunde inte kontrolleras. Försök igen."),
    ProblemCode.WRONG_DOCUMENT: _l("Underskriften gäller inte den här blanketten. Försök igen."),
    ProblemCode.WRONG_SIGNER: _l(
        "Blanketten ska skrivas under av den firmatecknare som anges i den."
    ),
    ProblemCode.REPLACEMENT_NEEDS_SIGNATORY: _l(
        "En ny behörig beställare registreras bara med firmatecknarens underskrift. Ange en "
        "firmatecknare hos arbetsgivaren, eller ta bort den nya beställaren ur ärendet och "
        "skicka en egen anmälan."
    ),
    ProblemCode.CO_SIGNATORY_NEEDED: _l(
        "Arbetsgivaren tecknas av två firmatecknare i förening. Ange också den andra "
        "firmatecknaren, en annan person än den första."
    ),
}


def problem_message(code: str) -> str:
    return str(PROBLEM_MESSAGES[ProblemCode(code)])


def code_choice_label(code: EmployerCode) -> str:
    """``A1001 – Huvudkontoret``, and ``(avslutad)`` for a closed code."""
    label = f"{code.code} – {code.name}"
    if code.status is CodeStatus.CLOSED:
        label += " " + str(_l("(avslutad)"))
    return label


def refusal_message(code: str) -> str:
    return str(REFUSAL_LABELS[Refusal(code)])
