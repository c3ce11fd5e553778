"""Notifications: the emails a change calls for, queued in the transaction that makes it.

Every permission change emails the person it affects (rule 5), and a change of an
employer's roles also emails the employer's other orderers. An email is rendered when
it is queued (so it says what was true then), stored as an :class:`EmailMessage` row and
handed to the ``send_email`` actor through the transactional outbox: it is sent only
once the change commits, and never if it rolls back.

- :mod:`~app.notifications.notices`: the notifications themselves (``notify_…``);
- :mod:`~app.notifications.audience`: who is told, at which address, in which language;
- :mod:`~app.notifications.queue`: an email rendered and queued behind the outbox;
- :mod:`~app.notifications.render`: the email templates;
- :mod:`~app.notifications.sender`: sending a queued email (the ``send_email`` actor).

Texts are Jinja templates in ``templates/email/`` (plain text, ``<code>.txt``; a block
``subject`` and a block ``body`` under ``_layout.txt``). Their messages are Swedish msgids
translated with the same catalogue as the UI and the PDFs (``app/translations``), so an
English email is the Swedish one through the catalogue and both always say the same.

No Flask here: the pipeline's actors call these functions as well as the views.
"""
