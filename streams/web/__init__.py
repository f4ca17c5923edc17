"""The worker's two listeners: the public webhook edge (``edge``) and the token-guarded admin listener
(``admin``, with its token in ``admin_token`` and its read-only SQL in ``readonly_sql``)."""
