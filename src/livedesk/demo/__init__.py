"""The demo: a Japanese cosmetics and apparel brand, its staff, shoppers and their history.

``livedesk demo`` seeds it (idempotently) so a newcomer has something real to look at; the
shop page under ``/demo/shop`` shows its catalogue.
"""
