"""The demo's mail sink: an SMTP server that keeps every message (:mod:`.sink`), in the
``sink_message`` table (:mod:`.models`), and the page listing them, ``/demo/e-post``
(:mod:`.views`)."""
