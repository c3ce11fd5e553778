"""Scanned intake: paper forms posted to SPV, scanned by a clerk and matched by their QR codes.

From a scanned file to errands received on paper, nothing lost:

1. :func:`~app.intake.reading.receive_file` keeps the file as a batch (the same file
   twice is one batch) and queues :func:`~app.intake.reading.read_batch`, or rejects a
   file that is no scan, with the reason.
2. :func:`~app.intake.reading.read_batch` reads the pages one by one in the isolated
   decoder (:mod:`app.intake.decoder`), records each page as it goes (the progress the
   clerk sees, and where a restarted job resumes) and sorts it: matched to an errand
   waiting for paper, or into the manual queue.
3. :func:`~app.intake.assembly.file_waiting_pages` puts the pages of one errand
   together; when every page of its form is there, they become a :class:`PaperForm` for
   a clerk to confirm.
4. :func:`~app.intake.clerk_actions.confirm_paper_form`: the clerk has checked the handwritten
   signature; the pages are archived as one PDF/A-3a with the errand, which is received on
   paper: an evidence page and the scan's record added, sealed (PAdES B-LTA) like an
   e-signed form (:mod:`app.registrations.evidence`).

The clerk's manual queue (:mod:`app.intake.clerk_actions`): ``match_page`` (by reference
number), ``register_paper_form`` (a blank form typed in) and ``discard_page``. What the
clerk's pages list is in :mod:`app.intake.queries`.
"""
