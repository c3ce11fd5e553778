"""BankID's recommended user messages (RFA1–RFA23) for every state, hint and error code."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.eid.models import OrderStatus

RFA1 = _l("Starta BankID-appen.")
RFA1_QR = _l("Starta BankID-appen och läs av QR-koden.")
RFA3 = _l("Åtgärden avbruten. Försök igen.")
RFA4 = _l(
    "En identifiering eller underskrift för det här personnumret är redan påbörjad. Försök igen."
)
RFA5 = _l("Internt tekniskt fel. Försök igen.")
RFA6 = _l("Åtgärden avbruten.")
RFA8 = _l(
    "BankID-appen svarar inte. Kontrollera att den är startad och att du har "
    "internetanslutning. Om du inte har något giltigt BankID kan du skaffa ett hos din "
    "bank. Försök sedan igen."
)
RFA9 = _l("Skriv in din säkerhetskod i BankID-appen och välj Identifiera eller Skriv under.")
RFA13 = _l("Försöker starta BankID-appen.")
RFA15 = _l("Söker efter BankID, det kan ta en liten stund …")
RFA16 = _l(
    "Det BankID du försöker använda är för gammalt eller spärrat. Använd ett annat "
    "BankID eller skaffa ett nytt hos din bank."
)
RFA17 = _l(
    "BankID-appen verkar inte finnas i din dator eller mobil. Installera den och skaffa "
    "ett BankID hos din bank. Installera appen från din appbutik eller "
    "https://install.bankid.com."
)
RFA21 = _l("Identifiering eller underskrift pågår.")
RFA22 = _l("Okänt fel. Försök igen.")
RFA23 = _l("Fotografera och läs av din ID-handling med BankID-appen.")

PENDING = {
    "noClient": RFA1,
    "started": RFA15,
    "userSign": RFA9,
    "userMrtd": RFA23,
}
FAILED = {
    "expiredTransaction": RFA8,
    "certificateErr": RFA16,
    "userCancel": RFA6,
    "cancelled": RFA3,
    "startFailed": RFA17,
    "alreadyInProgress": RFA4,
    "requestTimeout": RFA5,
    "maintenance": RFA5,
    "internalError": RFA5,
}


def user_message(status: OrderStatus, hint_code: str | None, same_device: bool) -> str:
    if status is OrderStatus.PENDING:
        if hint_code in (None, "outstandingTransaction"):
            return str(RFA13 if same_device else RFA1_QR)
        return str(PENDING.get(hint_code, RFA21))
    if status is OrderStatus.FAILED:
        return str(FAILED.get(hint_code or "", RFA22))
    return ""


def error_message(code: str) -> str:
    return str(FAILED.get(code, RFA22))
