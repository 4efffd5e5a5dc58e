"""Who may do what: staff sign-in and roles, the signed audit log of every
sign-in, upload and export, and the clinic's secret keys (pseudonyms, audit
signatures), kept outside the database."""
